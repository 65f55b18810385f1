"""Hardware descriptions and cost models: the spatial-array template, energy tables, the
analytical cost kernel (scalar and numba batch), roofline, and FPGA templates."""
from .energy import EnergyTable, load_energy_table  # noqa: F401
from .spec import (LEVELS, Accelerator, ArrayDim, MemoryLevel,  # noqa: F401
                   accelerator_from_dict, load_accelerator, preset_names)
from .cost import Cost, LowerBound, evaluate_mapping, lower_bound  # noqa: F401,E402
from .envelope import Envelope, envelope_of  # noqa: F401,E402
from .roofline import roofline  # noqa: F401,E402
