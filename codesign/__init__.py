"""codesign: neural-network / accelerator co-design."""
from models.errors import CodesignError  # noqa: F401

__version__ = "0.1.0"
