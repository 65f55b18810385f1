"""Summary statistics shared by the peer and silicon comparisons."""
from __future__ import annotations

import math

import numpy as np


def geomean(xs) -> float:
    """Geometric mean of positive numbers."""
    xs = list(xs)
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def rank_correlation(a, b) -> float | None:
    """Spearman rank correlation of two sequences; ``None`` with fewer than two values or when
    either is constant."""
    from codesign.validation.monotonicity import srcc

    if len(a) < 2:
        return None
    rho = float(srcc(np.asarray(a, float), np.asarray(b, float)))
    return None if math.isnan(rho) else rho
