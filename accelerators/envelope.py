"""Resource envelopes: the budget a searched accelerator must stay within (the NAAS way of
comparing against a baseline under the same resources)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .spec import Accelerator, load_accelerator


@dataclass(frozen=True)
class Envelope:
    max_pes: int
    max_onchip_bytes: int
    max_dram_bw_words_per_cycle: float
    source: str = ""

    def violations(self, acc: Accelerator) -> list[str]:
        """Human-readable list of the limits ``acc`` exceeds (empty when it fits)."""
        out = []
        if acc.num_pes > self.max_pes:
            out.append(f"PEs {acc.num_pes} > {self.max_pes}")
        if acc.onchip_bytes > self.max_onchip_bytes:
            out.append(f"on-chip bytes {acc.onchip_bytes} > {self.max_onchip_bytes}")
        if acc.dram.bw_words_per_cycle > self.max_dram_bw_words_per_cycle:
            out.append(f"DRAM bandwidth {acc.dram.bw_words_per_cycle} > {self.max_dram_bw_words_per_cycle} words/cycle")
        return out

    def fits(self, acc: Accelerator) -> bool:
        return not self.violations(acc)

    def to_dict(self) -> dict:
        return asdict(self)


def envelope_of(acc_or_name) -> Envelope:
    """The envelope of a preset (or any accelerator): its #PEs, on-chip bytes and DRAM bandwidth."""
    acc = load_accelerator(acc_or_name)
    return Envelope(max_pes=acc.num_pes, max_onchip_bytes=acc.onchip_bytes,
                    max_dram_bw_words_per_cycle=acc.dram.bw_words_per_cycle, source=acc.name)
