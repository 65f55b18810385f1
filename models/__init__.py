"""Workloads: the ``Layer`` loop nest, networks, the zoo, importers, search spaces, predictors."""
from .errors import (AcceleratorError, AssetMissing, CodesignError, MappingError,  # noqa: F401
                     WorkloadError)
from .layer import DATA_SPACES, DIMS, RELEVANT, Layer  # noqa: F401
from .network import AuxOp, Network  # noqa: F401
