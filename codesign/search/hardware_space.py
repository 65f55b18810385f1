"""The accelerator design space searched by the NAAS outer loop.

A candidate is a vector in ``[0, 1]^16`` so that any nevergrad optimizer can search it:

- ``x[0]``: array dimensionality (1-3); ``x[1]``: #PEs (steps of 8, up to the envelope);
  ``x[2:5]``: how the PEs split over the array dimensions (sizes in steps of 2);
- ``x[5:13]``: one importance per loop dimension ``G N K C P Q R S`` (the NAAS encoding):
  the ``k`` most important become the primary parallel dimensions, one per array dimension,
  and the next ``k`` a second loop each array dimension may also unroll (as Eyeriss' rows
  take R or C and its columns P or K);
- ``x[13]``: register-file bytes per PE, ``x[14]``: global-buffer share of the remaining
  on-chip budget (both in steps of 16 B); ``x[15]``: DRAM bandwidth as a share of the
  envelope's.

Decoding keeps on-chip bytes and bandwidth inside the envelope by construction; a rounded
array that still exceeds the PE budget is rejected before evaluation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accelerators import Accelerator, Envelope, accelerator_from_dict, envelope_of, load_accelerator
from models.layer import DIMS

DIM = 16
RF_MIN, RF_MAX = 16, 2048


def _q(v: float, step: int, lo: int) -> int:
    return max(lo, int(round(v / step)) * step)


def _storage(level) -> dict:
    return {"bypass": list(level.bypass), "buffering": level.buffering}


@dataclass(frozen=True)
class HardwareSpace:
    envelope: Envelope
    base: Accelerator  # energy table, word widths, clock and array timing come from the envelope's preset

    @classmethod
    def from_envelope(cls, name: str) -> "HardwareSpace":
        base = load_accelerator(name)
        return cls(envelope=envelope_of(base), base=base)

    @property
    def dimension(self) -> int:
        return DIM

    def decode(self, x) -> Accelerator | None:
        """The accelerator a vector describes, or ``None`` when it breaks the envelope."""
        x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
        env = self.envelope
        nd = 1 + min(2, int(x[0] * 3))
        pes_target = _q(8 + x[1] * (env.max_pes - 8), 8, 8)
        shares = x[2:2 + nd] + 0.05
        shares = shares / shares.sum()
        sizes = [_q(pes_target ** s, 2, 2) for s in shares]
        order = np.argsort(-x[5:13], kind="stable")
        loops = [[DIMS[order[a]], DIMS[order[nd + a]]] for a in range(nd)]
        pes = math.prod(sizes)
        if pes > env.max_pes:
            return None
        rf = _q(RF_MIN * (RF_MAX / RF_MIN) ** x[13], 16, 16)
        remaining = env.max_onchip_bytes - rf * pes
        if remaining < 1024:
            return None
        glb = _q(1024 + x[14] * (remaining - 1024), 16, 16)
        glb = min(glb, remaining - remaining % 16)
        bw = max(0.1, round(x[15] * env.max_dram_bw_words_per_cycle * 10) / 10)
        b = self.base
        d = {
            "name": f"naas-{'x'.join(str(s) for s in sizes)}",
            "clock_mhz": b.clock_mhz,
            "word_bits": dict(b.word_bits),
            "array": [{"size": s, "loops": l} for s, l in zip(sizes, loops)],
            # the envelope's array template (how operands move, what a fold costs) carries over
            "array_timing": b.timing.to_dict(),
            # storage rules (bypass, buffering, stored padding) carry over from the envelope too
            "stores_padding": b.stores_padding,
            "rf": {"capacity_bytes": rf, "bw_words_per_cycle": None, **_storage(b.rf)},
            "glb": {"capacity_bytes": glb, "bw_words_per_cycle": b.glb.bw_words_per_cycle, **_storage(b.glb)},
            "dram": {"bw_words_per_cycle": bw},
            "energy_table": b.energy_table,
            "notes": f"found by NAAS search in the {env.source} envelope",
        }
        acc = accelerator_from_dict(d)
        return acc if env.fits(acc) else None

    def storage_seeds(self, shares=(0.125, 0.25, 0.5)) -> list[np.ndarray]:
        """The baseline with its register files cut to each share of their bytes and the rest
        given to the global buffer: under a fused schedule the buffer holds a stack's
        intermediate tiles, so this trade-off is where the gains are (``docs/schedule.md``)."""
        x0 = self.encode(self.base)
        out = []
        for f in shares:
            x = x0.copy()
            rf = max(RF_MIN, self.base.rf.capacity_bytes * f)
            x[13] = math.log(rf / RF_MIN) / math.log(RF_MAX / RF_MIN)
            x[14] = 1.0
            if self.decode(x) is not None:
                out.append(np.clip(x, 0.0, 1.0))
        return out

    def encode(self, acc: Accelerator) -> np.ndarray:
        """A vector that decodes to (nearly) ``acc``: used to start the search at the baseline."""
        env = self.envelope
        nd = len(acc.array)
        x = np.full(DIM, 0.5)
        x[0] = (nd - 0.5) / 3
        x[1] = (acc.num_pes - 8) / max(1, env.max_pes - 8)
        logs = np.array([math.log(max(2, a.size)) for a in acc.array])
        shares = logs / logs.sum()
        # decode adds 0.05 to each share before normalizing: invert that for nd shares
        raw = shares * (1 + 0.05 * nd) - 0.05
        x[2:2 + nd] = np.clip(raw, 0, 1)
        imp = np.zeros(8)
        for a, ad in enumerate(acc.array):
            for j, loop in enumerate(ad.loops[:2]):
                imp[DIMS.index(loop)] = 1.0 - (j * nd + a + 1) / (2 * nd + 1)
        x[5:13] = imp
        x[13] = math.log(max(RF_MIN, acc.rf.capacity_bytes) / RF_MIN) / math.log(RF_MAX / RF_MIN)
        remaining = env.max_onchip_bytes - _q(RF_MIN * (RF_MAX / RF_MIN) ** x[13], 16, 16) * acc.num_pes
        x[14] = (acc.glb.capacity_bytes - 1024) / max(1, remaining - 1024)
        x[15] = acc.dram.bw_words_per_cycle / env.max_dram_bw_words_per_cycle
        return np.clip(x, 0.0, 1.0)
