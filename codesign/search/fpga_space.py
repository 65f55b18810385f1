"""FPGA design spaces for the NAAS outer loop: one loop-tiling template (HotNAS or Zhang et al.)
on one board, searched by the same nevergrad loop as the ASIC space (``hardware_space.py``).

A candidate is a vector in ``[0, 1]^d``. Each entry picks one parameter from its candidate list,
the pruned lists of ``accelerators.fpga.search`` (the smallest value giving each distinct tile
count over the workloads' layers, plus the values of the board's presets that fit):

- HotNAS (``d = 7``): ``Tm``, then ``Tn`` among the values that keep ``Tm Tn`` within the DSPs,
  then ``Tmd`` among those that fit the DSPs left; ``Tr``, ``Tc``; ``Ip`` in ``1 .. W-2`` and ``Wp``
  in ``1 .. W-1-Ip`` for ``W`` 16-bit words of memory port; ``Op = W - Ip - Wp`` (more port words
  never slow a tile, so the whole width is used);
- Zhang et al. (``d = 4``, fp32 as in the paper): ``Tm``, ``Tn`` within the DSPs, ``Tr``, ``Tc``.

DSPs and ports hold by construction; a design whose buffers (sized for every layer of every
workload: one design is built for all of them) break the board's BRAM or LUT budget decodes to
``None`` and is rejected before evaluation.

The baseline (``base``) is the board's preset that fits with the best objective (geomean over
the workloads); HotNAS presets exist for the ZCU102 only and Zhang et al. has none, so on other
boards, or when no preset fits, there is no baseline (``None``).
"""
from __future__ import annotations

import math

import numpy as np

from accelerators.fpga import hotnas as hn
from accelerators.fpga import zhang15 as zh
from accelerators.fpga.boards import Board, FPGAError, load_board, violations
from accelerators.fpga.power import FPGANetworkResult, network_result
from accelerators.fpga.search import HotNASSpace, Zhang15Space

MODELS = ("hotnas", "zhang15")
ZHANG15_DTYPE = "fp32"
OBJECTIVE_KEYS = {"edp": "edp_j_s", "energy": "energy_mj", "latency": "latency_ms"}


def _pick(cands: np.ndarray, u: float) -> int:
    return int(cands[min(len(cands) - 1, int(u * len(cands)))])


def _unpick(cands: np.ndarray, value: int) -> float:
    """The vector entry that picks ``value`` (the largest candidate not above it)."""
    i = max(0, int(np.searchsorted(cands, value, side="right")) - 1)
    return (i + 0.5) / len(cands)


def objective_value(result: FPGANetworkResult, objective: str) -> float:
    """Latency (ms), energy (mJ) or EDP (J*s) of one network result."""
    if objective == "latency":
        return result.latency_ms
    return result.energy[OBJECTIVE_KEYS[objective]]


class FPGASpace:
    """The designs of ``model`` on ``board`` for the layers of ``networks`` (see the module doc)."""

    def __init__(self, board, model: str, networks, objective: str = "edp"):
        if model not in MODELS:
            raise FPGAError(f"unknown FPGA model '{model}' (known: {', '.join(MODELS)})")
        if objective not in OBJECTIVE_KEYS:
            raise FPGAError(f"unknown objective '{objective}' (known: {', '.join(OBJECTIVE_KEYS)})")
        self.board: Board = load_board(board)
        self.model, self.objective = model, objective
        self.networks = list(networks)
        self.layers = [l for n in self.networks for l in n.layers]
        if not self.layers:
            raise FPGAError("the FPGA search needs at least one layer")
        self._layer_result = hn.layer_result if model == "hotnas" else zh.layer_result
        self.presets = self._preset_rows()
        fitting = [p for p in self.presets if p["fits"]]
        extra = [p["design"] for p in fitting]
        if model == "hotnas":
            self._grid = HotNASSpace(self.layers, self.board, objective, extra=extra)
            self.names = ("Tm", "Tn", "Tmd", "Tr", "Tc", "Ip", "Wp")
        else:
            self._grid = Zhang15Space(self.layers, self.board, objective, ZHANG15_DTYPE)
            self.names = ("Tm", "Tn", "Tr", "Tc")
        self.cands = self._grid.cands
        best = min(fitting, key=lambda p: (p["score"], p["preset"]), default=None)
        self.base_name = best["preset"] if best else None
        self.base = hn.load_preset(best["preset"]) if best else None

    @property
    def dimension(self) -> int:
        return len(self.names)

    # ---- designs, resources, evaluation ----
    def design_from_dict(self, d: dict):
        if self.model == "hotnas":
            return hn.HotNASDesign.from_dict(d)
        return zh.Zhang15Design.from_dict(d)

    def resources(self, design):
        """Resources with buffers sized for every layer of every workload."""
        if self.model == "hotnas":
            return hn.hotnas_resources(design, self.layers)
        return zh.zhang15_resources(design, self.layers)

    def violations(self, design) -> list:
        return violations(self.resources(design), self.board)

    def evaluate(self, design, network) -> FPGANetworkResult:
        """``network`` on ``design``; energy charges the buffers the design has for all the
        workloads (the same as ``hotnas_network`` / ``zhang15_network`` for one workload)."""
        res = self.resources(design)
        return network_result(network, design, self.board, self.model, lambda _d, _n: res, self._layer_result,
                              allow_over_budget=True, mode="design")

    def score(self, design) -> float:
        """Geomean of the objective over the workloads."""
        vals = [objective_value(self.evaluate(design, n), self.objective) for n in self.networks]
        if len(vals) == 1:
            return vals[0]
        return math.exp(sum(math.log(v) for v in vals) / len(vals))

    def _preset_rows(self) -> list[dict]:
        rows = []
        if self.model != "hotnas":
            return rows
        for name in hn.preset_names():
            if hn.preset_board(name) != self.board.name:
                continue
            p = hn.load_preset(name)
            broken = self.violations(p)
            rows.append({"preset": name, "design": {k: getattr(p, k) for k in hn.PARAMS}, "fits": not broken,
                         "violations": [v.message() for v in broken], "score": self.score(p)})
        return rows

    # ---- vectors ----
    def _dsp_lists(self):
        """Candidate lists of the DSP-coupled parameters, as functions of the ones before."""
        c, dsp = self.cands, self.board.dsp
        if self.model == "hotnas":
            spare = dsp - int(c["Tmd"].min())
            return [("Tm", lambda v: c["Tm"][c["Tm"] <= spare]),
                    ("Tn", lambda v: c["Tn"][c["Tn"] <= spare // v["Tm"]]),
                    ("Tmd", lambda v: c["Tmd"][c["Tmd"] <= dsp - v["Tm"] * v["Tn"]])]
        macs = dsp // zh.DTYPES[ZHANG15_DTYPE]["dsp_per_mac"]
        return [("Tm", lambda v: c["Tm"][c["Tm"] <= macs]),
                ("Tn", lambda v: c["Tn"][c["Tn"] <= macs // v["Tm"]])]

    def _values(self, x) -> dict:
        x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
        u = dict(zip(self.names, x))
        v = {}
        for k, cands in self._dsp_lists():
            lst = cands(v)
            if len(lst) == 0:
                raise FPGAError(f"board {self.board.name}: {self.board.dsp} DSPs cannot hold one {self.model} design")
            v[k] = _pick(lst, u[k])
        for k in ("Tr", "Tc"):
            v[k] = _pick(self.cands[k], u[k])
        if self.model == "hotnas":
            w = self.board.port_words16
            v["Ip"] = 1 + min(w - 3, int(u["Ip"] * (w - 2)))
            v["Wp"] = 1 + min(w - 2 - v["Ip"], int(u["Wp"] * (w - 1 - v["Ip"])))
            v["Op"] = w - v["Ip"] - v["Wp"]
        return v

    def decode(self, x):
        """The design a vector describes, or ``None`` when it breaks the board's limits."""
        v = self._values(x)
        if self.model == "hotnas":
            d = hn.HotNASDesign(**{k: v[k] for k in hn.PARAMS})
        else:
            d = zh.Zhang15Design(**{k: v[k] for k in self.names}, dtype=ZHANG15_DTYPE)
        return None if self.violations(d) else d

    def encode(self, design) -> np.ndarray:
        """A vector that decodes to ``design`` (HotNAS: with ``Op`` widened to the whole port):
        used to start the search at the baseline."""
        x = np.full(self.dimension, 0.5)
        idx = {k: i for i, k in enumerate(self.names)}
        v = {}
        for k, cands in self._dsp_lists():
            lst = cands(v)
            x[idx[k]] = _unpick(lst, getattr(design, k))
            v[k] = _pick(lst, x[idx[k]])
        for k in ("Tr", "Tc"):
            x[idx[k]] = _unpick(self.cands[k], getattr(design, k))
        if self.model == "hotnas":
            w = self.board.port_words16
            ip = min(max(1, design.Ip), w - 2)
            wp = min(max(1, design.Wp), w - 1 - ip)
            x[idx["Ip"]] = (ip - 0.5) / (w - 2)
            x[idx["Wp"]] = (wp - 0.5) / (w - 1 - ip)
        return np.clip(x, 0.0, 1.0)
