"""``codesign accelerators list|show``: the presets and any accelerator YAML."""
from __future__ import annotations

from accelerators import envelope_of, load_accelerator, preset_names

from ._common import emit_json


def _summary(acc) -> dict:
    d = acc.to_dict()
    d["num_pes"] = acc.num_pes
    d["onchip_bytes"] = acc.onchip_bytes
    d["fingerprint"] = acc.fingerprint()
    d["envelope"] = envelope_of(acc).to_dict()
    return d


def _list(args) -> int:
    rows = []
    for name in preset_names():
        a = load_accelerator(name)
        rows.append({"name": name, "num_pes": a.num_pes,
                     "array": "x".join(f"{d.size}[{'/'.join(d.loops)}]" for d in a.array),
                     "glb_bytes": a.glb.capacity_bytes, "clock_mhz": a.clock_mhz,
                     "dram_bw_words_per_cycle": a.dram.bw_words_per_cycle})
    if args.json:
        emit_json(rows)
        return 0
    print(f"{'name':<12} {'PEs':>6}  {'array (loops)':<26} {'GLB kB':>8} {'MHz':>6} {'DRAM w/c':>9}")
    for r in rows:
        print(f"{r['name']:<12} {r['num_pes']:>6}  {r['array']:<26} {r['glb_bytes'] / 1024:>8.0f} "
              f"{r['clock_mhz']:>6.0f} {r['dram_bw_words_per_cycle']:>9g}")
    return 0


def _show(args) -> int:
    acc = load_accelerator(args.accelerator)
    if args.json:
        emit_json(_summary(acc))
    else:
        print(acc.to_yaml().rstrip())
        print(f"# {acc.num_pes} PEs, {acc.onchip_bytes} on-chip bytes, fingerprint {acc.fingerprint()}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("accelerators", help="list the accelerator presets or show one")
    s = p.add_subparsers(dest="action", metavar="ACTION")
    s.required = True
    pl = s.add_parser("list", help="list the presets")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=_list)
    ps = s.add_parser("show", help="show a preset (NAME) or an accelerator YAML (PATH)")
    ps.add_argument("accelerator", metavar="NAME|PATH")
    ps.add_argument("--json", action="store_true")
    ps.set_defaults(func=_show)
