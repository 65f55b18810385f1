"""FPGA loop-tiling templates on real board budgets.

- ``boards``: boards as data (DSP, BRAM, LUT, DDR bandwidth, memory ports, default clock, power
  numbers) and the on-chip memory / resource accounting;
- ``zhang15``: the roofline loop-tiling model of Zhang et al. (FPGA 2015);
- ``hotnas``: the ZCU102 template of Jiang et al. (FNAS / HotNAS) with a depthwise engine and port
  counts, and the nine ZCU102 presets;
- ``power``: the simple FPGA power model (static + per-DSP + per-BRAM + DRAM bytes) and result types;
- ``search``: design search under a board's limits (exhaustive on a pruned grid, nevergrad beyond).
"""
from .boards import (Board, FPGAError, PowerParams, ResourceUse, Violation, board_names,  # noqa: F401
                     load_board)
from .power import FPGALayerResult, FPGANetworkResult  # noqa: F401
from .zhang15 import Zhang15Design, zhang15_layer, zhang15_network, zhang15_resources  # noqa: F401
from .hotnas import (HotNASDesign, check_resources, hotnas_layer, hotnas_network,  # noqa: F401
                     hotnas_resources, load_preset, preset_names)
