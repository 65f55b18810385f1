"""NAS-Bench-201 latency sources: the measured Raspberry Pi 5 latency of every cell, or the
latency of a Pi 5 runtime predicted for every cell by AdaProxy from a proxy device.

``SPEC`` (``codesign search --space nasbench201 --max-latency MS --latency-source SPEC``) is one of

- ``pi5:RUNTIME``: the measured Raspberry Pi 5 latency of every cell (HW-NAS-Bench-360,
  ``models.nb201_table``; RUNTIME is ``litert``, ``onnx`` or ``torchmobile``);
- ``adaproxy:TARGET:PROXY[:N]``: the Pi 5 latency of runtime TARGET *predicted* for every cell
  by AdaProxy (``codesign.validation.adaproxy``) from a proxy device: PROXY is a device column of
  the "One Proxy Device" latency set (``nasbench201/oneproxy_latency.csv``, 1,999 measured cells)
  or another Pi 5 runtime. The proxy's per-operator latencies are a non-negative least-squares
  fit of its measurements on each default encoding of the cells (operator counts, counts over
  the live edges, both plus the live one-hot; ``codesign.validation.monotonicity``); a Pi 5 proxy,
  measured on every cell, also keeps the part of its latency the fit misses. AdaProxy is fitted
  to N (default 30) target cells drawn with the run's seed and predicts all 15,625
  (``codesign.validation.adaproxy.bag``: the average of 20 fits on subsamples; below 15 samples
  no lambda can be validated and the fit is the proxy's ranking rescaled).

The search under a target is ``codesign.search.nb201_latency``; a source carries the measured
target latency beside what the search sees, so a run can be scored against the truth.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from models.errors import CodesignError

PI5 = "pi5"
ADAPROXY = "adaproxy"
DEFAULT_SOURCE = "pi5:litert"
DEFAULT_SAMPLES = 30
MIN_SAMPLES = 5           # AdaProxy target samples: fewer leave alpha and c to two or three cells
LATENCY_FLOOR_MS = 1e-3   # a predicted latency below it (a negative intercept) is raised to it
ONEPROXY_ASSET = "nasbench201/oneproxy_latency.csv"
ONEPROXY_ORIGIN = "the data released with 'One Proxy Device Is Enough for Hardware-Aware Neural Architecture Search'"


def is_nb201_source(spec) -> bool:
    """Whether ``spec`` names a NAS-Bench-201 latency (``pi5:...`` or ``adaproxy:...``)."""
    return isinstance(spec, str) and spec.split(":", 1)[0] in (PI5, ADAPROXY)


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--latency-source`` of nasbench201: ``kind`` ``"pi5"`` (measured) or
    ``"adaproxy"`` (predicted), the Pi 5 runtime ``target`` that is the truth, and for AdaProxy
    the ``proxy`` and the number of target ``samples``."""

    kind: str
    target: str
    proxy: str | None = None
    samples: int | None = None

    @property
    def text(self) -> str:
        if self.kind == PI5:
            return f"{PI5}:{self.target}"
        return f"{ADAPROXY}:{self.target}:{self.proxy}:{self.samples}"


def _runtime(spec: str, name: str, what: str) -> str:
    from models.nb201_table import RUNTIMES

    if name not in RUNTIMES:
        raise CodesignError(f"--latency-source {spec!r}: unknown Raspberry Pi 5 runtime {name!r} as {what} "
                            f"(known: {', '.join(RUNTIMES)})")
    return name


def parse_source(spec: str) -> SourceSpec:
    """``SourceSpec`` of ``spec`` (one ``CodesignError`` line when malformed; proxy devices and
    the sample count against the cells are checked by :func:`latency_source`)."""
    parts = spec.split(":") if isinstance(spec, str) else []
    if len(parts) == 2 and parts[0] == PI5:
        return SourceSpec(PI5, _runtime(spec, parts[1], "the measured latency"))
    if len(parts) in (3, 4) and parts[0] == ADAPROXY:
        target = _runtime(spec, parts[1], "the target")
        proxy = parts[2]
        if not re.fullmatch(r"[a-z0-9_]{1,64}", proxy):
            raise CodesignError(f"--latency-source {spec!r}: the proxy {proxy!r} is not a device name")
        n = DEFAULT_SAMPLES
        if len(parts) == 4:
            if not re.fullmatch(r"[0-9]{1,9}", parts[3]):
                raise CodesignError(f"--latency-source {spec!r}: N (target samples) must be a whole number, "
                                    f"got {parts[3]!r}")
            n = int(parts[3])
        if n < MIN_SAMPLES:
            raise CodesignError(f"--latency-source {spec!r}: AdaProxy needs at least {MIN_SAMPLES} target samples, "
                                f"got N={n}")
        if proxy == target:
            raise CodesignError(f"--latency-source {spec!r}: the proxy is the target itself; for the measured "
                                f"latency give {PI5}:{target}")
        return SourceSpec(ADAPROXY, target, proxy, n)
    raise CodesignError(f"--latency-source {spec!r}: for nasbench201 give {PI5}:RUNTIME (the measured Raspberry Pi 5 "
                        f"latency: litert, onnx, torchmobile) or {ADAPROXY}:TARGET:PROXY[:N] (TARGET a Pi 5 runtime "
                        f"predicted by AdaProxy from device PROXY with N target samples, default {DEFAULT_SAMPLES})")


# ---- the proxy's features over every cell ----------------------------------------------------

@lru_cache(maxsize=1)
def cell_encodings() -> dict:
    """``{encoding: matrix}`` of every table cell (rows in ``load_hw360`` order) for the default
    AdaProxy encodings (``codesign.validation.monotonicity.DEFAULT_ENCODINGS``)."""
    from .monotonicity import DEFAULT_ENCODINGS, LatencyTable
    from models.nb201_table import load_hw360
    from models.spaces.nasbench201 import NasBench201Space

    table = load_hw360()
    space = NasBench201Space()
    X = np.hstack([np.array([space.encode(s) for s in table.arch_strs], dtype=np.float64), np.ones((len(table), 1))])
    cells = LatencyTable("nasbench201 cells", X=X, arch_strs=list(table.arch_strs))
    return {e: cells.encoding(e) for e in DEFAULT_ENCODINGS}


@lru_cache(maxsize=1)
def load_oneproxy():
    """The "One Proxy Device" latency set (``codesign.validation.monotonicity.LatencyTable``)."""
    from .monotonicity import load_latency_csv
    from models.assets import asset_path

    return load_latency_csv(asset_path(ONEPROXY_ASSET, origin=ONEPROXY_ORIGIN))


def proxy_devices() -> list[str]:
    """Proxy names ``adaproxy:`` accepts: the oneproxy device columns and the Pi 5 runtimes."""
    from models.nb201_table import RUNTIMES

    return list(load_oneproxy().columns) + list(RUNTIMES)


@lru_cache(maxsize=16)
def proxy_features(proxy: str) -> tuple[dict, np.ndarray]:
    """``(sets, linear)``: the proxy's AdaProxy features of every table cell per encoding
    (``{encoding: phi}``), and its own latency model of every cell (the measured latency for a
    Pi 5 runtime, the first encoding's linear fit for a oneproxy device)."""
    from .adaproxy import fit_linear_proxy
    from .adaproxy import proxy_features as features
    from models.nb201_table import RUNTIMES, load_hw360

    enc = cell_encodings()
    if proxy in RUNTIMES:
        y = load_hw360().latency(proxy)
        return {e: features(X, y)[0] for e, X in enc.items()}, y
    op = load_oneproxy()
    if proxy not in op.columns:
        raise CodesignError(f"--latency-source: unknown proxy device {proxy!r} (known: {', '.join(op.columns)} "
                            f"in {ONEPROXY_ASSET}, or a Pi 5 runtime: {', '.join(RUNTIMES)})")
    y = op.column(proxy, latency=True)
    sets, own = {}, None
    for e, X in enc.items():
        w, c = fit_linear_proxy(op.encoding(e), y)
        keep = w != 0
        sets[e] = X[:, keep] * w[keep]
        if own is None:
            own = sets[e].sum(axis=1) + c
    return sets, own


def sample_rows(n_cells: int, samples: int, seed: int) -> np.ndarray:
    """The ``samples`` target cells a run measures (rows, sorted), drawn with ``seed``."""
    if samples > n_cells:
        raise CodesignError(f"--latency-source: N={samples} target samples, more than the {n_cells:,} cells with a "
                            f"measured Pi 5 latency")
    return np.sort(np.random.default_rng([seed, 0xADA]).choice(n_cells, size=samples, replace=False))


@dataclass
class Nb201Latency:
    """A latency source over the table's cells: ``latency_ms`` (what the search sees, per row),
    ``true_ms`` (the measured Pi 5 latency of ``target``), ``srcc`` of the two over every cell,
    ``info`` (the adaptation: proxy, samples, the encodings chosen)."""

    spec: str
    target: str
    latency_ms: np.ndarray
    true_ms: np.ndarray
    srcc: float
    info: dict = field(default_factory=dict)

    @property
    def truth(self) -> str:
        """The source of the measured latency (``pi5:TARGET``)."""
        return f"{PI5}:{self.target}"


def _finish(spec: SourceSpec, pred: np.ndarray, info: dict) -> Nb201Latency:
    from .monotonicity import srcc
    from models.nb201_table import load_hw360

    true = load_hw360().latency(spec.target)
    low = int((pred < LATENCY_FLOOR_MS).sum())
    pred = np.maximum(pred, LATENCY_FLOOR_MS)
    pred.setflags(write=False)  # shared by every caller of the cached source
    return Nb201Latency(spec.text, spec.target, pred, true, srcc(pred, true), {**info, "floored_cells": low})


@lru_cache(maxsize=8)
def latency_source(spec: str, seed: int = 0) -> Nb201Latency:
    """The latency of every table cell under ``spec`` (``pi5:...`` or ``adaproxy:...``); an
    AdaProxy source draws its target samples with ``seed``."""
    from .adaproxy import bag
    from models.nb201_table import load_hw360

    s = parse_source(spec)
    table = load_hw360()
    if s.kind == PI5:
        return _finish(s, table.latency(s.target).copy(), {})
    sets, _ = proxy_features(s.proxy)
    rows = sample_rows(len(table), s.samples, seed)
    y = table.latency(s.target)[rows]
    model = bag(sets, rows, y, seed=seed)
    pred = model.predict(sets)
    return _finish(s, pred, {"proxy": s.proxy, "samples": s.samples, "sample_rows": rows.tolist(),
                             "features": model.feature_counts()})


def scaled_proxy(target: str, proxy: str, samples: int, seed: int = 0) -> Nb201Latency:
    """The proxy's own latency, rescaled to the target by least squares on the same target
    samples an ``adaproxy`` source draws (``alpha * proxy + c`` only: no per-operator correction);
    the baseline AdaProxy is measured against (``studies/nb201_latency_sources.py``)."""
    from models.nb201_table import load_hw360

    s = parse_source(f"{ADAPROXY}:{target}:{proxy}:{samples}")
    table = load_hw360()
    _, own = proxy_features(s.proxy)
    rows = sample_rows(len(table), s.samples, seed)
    A = np.column_stack([own[rows], np.ones(len(rows))])
    alpha, c = np.linalg.lstsq(A, table.latency(s.target)[rows], rcond=None)[0]
    if alpha <= 0:  # noise must not reverse the proxy's ranking: proportional instead
        alpha, c = float(table.latency(s.target)[rows].sum() / own[rows].sum()), 0.0
    out = _finish(s, alpha * own + c, {"proxy": s.proxy, "samples": s.samples, "alpha": float(alpha), "c": float(c)})
    out.spec = f"scaled:{target}:{proxy}:{samples}"
    return out
