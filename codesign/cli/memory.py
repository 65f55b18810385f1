"""``codesign memory``: peak activation SRAM and weight Flash of a network on a
microcontroller-class target, layer by layer and patch-based (``accelerators.memory``), and
whether they fit an SRAM / Flash size or a microcontroller board (``--mcu``, ``accelerators.mcu``)."""
from __future__ import annotations

from models.errors import WorkloadError

from ._common import MAX_RESOLUTION, emit_json, float_in, int_in

MAX_PATCHES = 64


def _fits(nbytes: int, kb: float | None) -> str:
    if kb is None:
        return ""
    return f"  fits {kb:g} kB" if nbytes <= kb * 1024 else f"  does NOT fit {kb:g} kB ({nbytes / 1024 - kb:.1f} kB over)"


def _run(args) -> int:
    from accelerators.memory import best_patch_stage, memory_profile, patch_stacks

    from .evaluate import load_network

    if args.mcu is not None:  # the board's SRAM and Flash, unless given
        from accelerators.mcu import load_mcu
        board = load_mcu(args.mcu)
        args.sram_kb = board.sram_kb if args.sram_kb is None else args.sram_kb
        args.flash_kb = board.flash_kb if args.flash_kb is None else args.flash_kb
    net = load_network(args.workload, args.resolution)
    lbl = memory_profile(net, act_bits=args.act_bits)
    if args.patch_layers is not None:
        if not net.inputs:
            raise WorkloadError(f"network '{net.name}' has no graph edges: patch-based inference needs them")
        stacks = patch_stacks(net, args.patch_layers, args.patches)
        patched, k = memory_profile(net, stacks, act_bits=args.act_bits), stacks[0].last + 1
    elif net.inputs:
        k, patched = best_patch_stage(net, args.patches, act_bits=args.act_bits)
    else:
        k, patched = None, None
    if args.json:
        emit_json({"layer_by_layer": lbl.to_dict(), "patch_based": patched.to_dict() if patched else None,
                   "patch_layers": k, "patches": args.patches, "sram_kb": args.sram_kb, "flash_kb": args.flash_kb,
                   "mcu": args.mcu})
        return 0
    lines = [f"{net.name}: activations int{args.act_bits}, weights int8 (Flash {lbl.flash_bytes / 1024:.1f} kB)"
             f"{_fits(lbl.flash_bytes, args.flash_kb)}",
             f"layer by layer: peak {lbl.peak_bytes / 1024:.1f} kB at {lbl.peak_at}{_fits(lbl.peak_bytes, args.sram_kb)}"]
    if patched is not None:
        lines.append(f"patch-based, first {k} layers ({net.layers[0].name} .. {net.layers[k - 1].name}) in "
                     f"{args.patches}x{args.patches} patches: peak {patched.peak_bytes / 1024:.1f} kB at "
                     f"{patched.peak_at}{_fits(patched.peak_bytes, args.sram_kb)} "
                     f"({lbl.peak_bytes / patched.peak_bytes:.1f}x less)")
    if args.layers:
        lines += ["", f"{'layer (or patch stage)':<60} {'kB':>9}"]
        for r in (patched or lbl).rows:
            lines.append(f"{r['name'][:60]:<60} {r['bytes'] / 1024:>9.1f}")
    print("\n".join(lines + lbl.notes))
    return 0


def register(sub) -> None:
    p = sub.add_parser("memory", help="peak activation SRAM and weight Flash of a network (MCU targets), layer by "
                                      "layer and patch-based")
    p.add_argument("--workload", required=True, metavar="NAME|PATH", help="zoo network name or a workload file")
    p.add_argument("--resolution", type=int_in(1, MAX_RESOLUTION), default=None, help="input size for zoo networks")
    p.add_argument("--patches", type=int_in(1, MAX_PATCHES), default=4,
                   help="patch-based stage in N x N patches (default 4, as MCUNetV2)")
    p.add_argument("--patch-layers", type=int_in(1, 100_000), default=None,
                   help="layers in the patch-based stage (default: the count with the least peak)")
    p.add_argument("--act-bits", type=int_in(1, 32), default=8, help="activation width in bits (default 8)")
    p.add_argument("--sram-kb", type=float_in(0, 1e9, lo_open=True), default=None, help="say whether it fits this SRAM")
    p.add_argument("--flash-kb", type=float_in(0, 1e9, lo_open=True), default=None, help="and this Flash")
    p.add_argument("--mcu", metavar="BOARD", default=None,
                   help="say whether it fits this microcontroller's SRAM and Flash (e.g. stm32f746; "
                        "--sram-kb / --flash-kb replace either)")
    p.add_argument("--layers", action="store_true", help="print every layer's (or the stage's) peak")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
