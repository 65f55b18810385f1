"""Roofline of a mapped layer: arithmetic intensity at each memory level vs attainable rate."""
from __future__ import annotations

from .cost import Cost
from .spec import Accelerator


def roofline(acc: Accelerator, cost: Cost) -> dict:
    """Place one mapped layer on the accelerator's roofline (rates in MACs per cycle).

    For each level with a bandwidth: intensity = MACs / words moved at that level, attainable
    = min(peak, intensity x bandwidth), ridge = peak / bandwidth. The binding roof is the level
    (or compute) with the lowest attainable rate.
    """
    if not cost.valid:
        raise ValueError("roofline of an invalid mapping")
    peak = float(acc.num_pes)
    levels = {}
    for lvl in ("glb", "dram"):
        words = sum(v["reads"] + v["writes"] for v in cost.accesses[lvl].values())
        bw = acc.level(lvl).bw_words_per_cycle
        intensity = cost.macs / words if words else float("inf")
        levels[lvl] = {
            "words": words,
            "intensity_macs_per_word": intensity,
            "bw_words_per_cycle": bw,
            "ridge_macs_per_word": peak / bw,
            "attainable_macs_per_cycle": min(peak, intensity * bw),
        }
    binding = min(levels, key=lambda k: levels[k]["attainable_macs_per_cycle"])
    if levels[binding]["attainable_macs_per_cycle"] >= peak:
        binding = "compute"
    return {
        "peak_macs_per_cycle": peak,
        "achieved_macs_per_cycle": cost.macs / cost.cycles,
        "levels": levels,
        "roof": binding,
    }
