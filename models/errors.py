"""Typed exceptions shared by every package.

They live in the lowest package so that ``accelerators``, ``mappings`` and ``codesign`` can all
raise and catch them without importing upwards. The CLI turns any ``CodesignError`` into one
clear line on stderr and a non-zero exit.
"""


class CodesignError(ValueError):
    """Base class of every error a user can cause (bad input, missing asset, ...)."""


class WorkloadError(CodesignError):
    """A layer, network or importer input is malformed or unsupported."""


class AssetMissing(CodesignError):
    """A data file from the asset directory is not available."""


class AcceleratorError(CodesignError):
    """An accelerator description is invalid."""


class MappingError(CodesignError):
    """A mapping is invalid, or no valid mapping exists for a layer."""
