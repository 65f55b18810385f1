"""``codesign fpga``: a network on an FPGA loop-tiling design (Zhang et al. FPGA'15 or the
HotNAS ZCU102 template), a preset, or the best design a search finds under the board's limits."""
from __future__ import annotations

from models.errors import CodesignError

from ._common import MAX_CLOCK_MHZ, MAX_RESOLUTION, MIN_CLOCK_MHZ, emit_json, float_in, int_in, parse_kv, seed_arg

DEFAULT_WORKLOAD = "alexnet"
MAX_SEARCH_BUDGET = 1_000_000     # nevergrad evaluations of a design search
FLOAT_LIMITS = ("clock_mhz", "ddr_bandwidth_gbs")   # --limit keys that take a number, not an integer
SEARCH_DEFAULTS = {"objective": "latency", "mode": "cross-layer", "seed": 0}   # options of --search only


def _board(args):
    from accelerators.fpga import load_board
    from accelerators.fpga.hotnas import preset_board

    name = args.board or (preset_board(args.preset) if args.preset else None)
    if name is None:
        raise CodesignError("give --board (e.g. zcu102, vc707, zc706, ultra96, pynq-z2) or a YAML path")
    board = load_board(name)
    limits = {}
    if args.limit:
        for k, v in parse_kv(args.limit, "--limit").items():
            try:  # the ranges are the board schema's (Board.with_limits)
                limits[k] = float(v) if k in FLOAT_LIMITS else int(v) if len(v) <= 40 else None
            except ValueError:
                limits[k] = None
            if limits[k] is None:
                kind = "a number" if k in FLOAT_LIMITS else "an integer"
                raise CodesignError(f"--limit: {k}={v[:40]!r} is not {kind}")
    if args.clock_mhz is not None:
        if "clock_mhz" in limits:
            raise CodesignError("give the clock once: --clock-mhz or --limit clock_mhz=..., not both")
        limits["clock_mhz"] = args.clock_mhz
    return board.with_limits(**limits) if limits else board


def _model(args) -> str:
    if args.preset:
        if args.model not in (None, "hotnas"):
            raise CodesignError(f"--preset {args.preset} is a hotnas design; it cannot run with --model {args.model}")
        return "hotnas"
    if args.model:
        return args.model
    if args.design and any(k in args.design for k in ("Tmd", "Ip", "Op", "Wp")):
        return "hotnas"
    return "zhang15" if args.design else "hotnas"


def _design(args, model: str):
    from accelerators.fpga import HotNASDesign, Zhang15Design, load_preset

    if args.preset:
        return load_preset(args.preset)
    if model == "zhang15":
        return Zhang15Design.parse(args.design, dtype=args.dtype)
    if args.dtype not in (None, "fix16"):
        raise CodesignError(f"--dtype {args.dtype}: the hotnas template is 16-bit fixed point (fix16)")
    return HotNASDesign.parse(args.design)


def _fmt_design(d: dict | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (d or {}).items() if v is not None)


def _print_result(res, board, title: str) -> None:
    print(title)
    print(f"{'layer':<28} {'engine':<7} {'cycles':>11} {'latency_ms':>11} {'GOPS':>9}  bound")
    for l in res.layers:
        print(f"{l.name[:28]:<28} {l.engine:<7} {l.cycles:>11d} {l.latency_ms:>11.4f} {l.gops:>9.2f}  {l.bound}")
    print(f"{'total':<28} {'':<7} {res.cycles:>11d} {res.latency_ms:>11.4f} {res.gops:>9.2f}")
    r = res.resources
    port = f", ports {r.port_bits}/{board.mem_port_bits} bits" if r.port_bits is not None else ""
    print(f"resources: DSP {r.dsp}/{board.dsp}, BRAM36 {r.bram36:g}/{board.bram36}, "
          f"LUT (as RAM) {r.lut}/{board.lut}{port}")
    e = res.energy
    print(f"energy {e['energy_mj']:.3f} mJ, {e['power_w']:.2f} W average, EDP {e['edp_j_s']:.3e} J*s "
          f"at {res.clock_mhz:g} MHz")
    for v in res.violations:
        print(f"OVER BUDGET: {v.message()}")


def _list(args) -> int:
    from accelerators.fpga import board_names, load_board, load_preset, preset_names

    if args.json:
        from accelerators.fpga.hotnas import preset_board

        emit_json({"boards": [load_board(n).to_dict() for n in board_names()],
                   "presets": [{"name": n, "model": "hotnas", "board": preset_board(n),
                                "design": load_preset(n).to_dict()} for n in preset_names()]})
        return 0
    print(f"{'board':<10} {'part':<22} {'DSP':>5} {'BRAM36':>7} {'LUT':>7} {'MHz':>5} {'DDR GB/s':>9} {'port bits':>9}")
    for n in board_names():
        b = load_board(n)
        print(f"{b.name:<10} {b.part:<22} {b.dsp:>5} {b.bram36:>7} {b.lut:>7} {b.clock_mhz:>5g} "
              f"{b.ddr_bandwidth_gbs:>9g} {b.mem_port_bits:>9}")
    print("\nhotnas presets (zcu102):")
    for n in preset_names():
        print(f"  {n}: {_fmt_design(load_preset(n).to_dict())}")
    return 0


def _run(args) -> int:
    from models.importers import load_workload

    if args.list:
        given = [f"--{x}" for x in ("design", "preset", "search", "limit", "board") if getattr(args, x)]
        if given:
            raise CodesignError(f"--list lists the boards and presets; it takes no {given[0]}")
        return _list(args)
    chosen = [x for x in ("design", "preset", "search") if getattr(args, x)]
    if len(chosen) != 1:
        raise CodesignError("give exactly one of --design, --preset or --search (or --list)")
    search_only = [k for k in (*SEARCH_DEFAULTS, "budget") if getattr(args, k) is not None]
    if search_only and not args.search:
        raise CodesignError(f"--{search_only[0]} goes with --search; it does nothing for a given design")
    if args.search and args.allow_over_budget:
        raise CodesignError("--allow-over-budget goes with --design/--preset; a search keeps to the board's limits")
    for k, v in SEARCH_DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    board = _board(args)
    model = _model(args)
    network = load_workload(args.workload, resolution=args.resolution)
    if args.search:
        from accelerators.fpga.search import search_design

        if model == "hotnas" and args.dtype not in (None, "fix16"):
            raise CodesignError(f"--dtype {args.dtype}: the hotnas template is 16-bit fixed point (fix16)")
        found = search_design(network, board, model=model, objective=args.objective, mode=args.mode,
                              seed=args.seed, budget=args.budget, dtype=args.dtype or "fp32")
        if args.json:
            emit_json({"workload": network.name, **found.to_dict()})
            return 0
        how = f"{found.method}, {found.evaluated} designs evaluated in {found.time_s:.1f} s"
        title = (f"{model} {found.mode} search on {board.name} for {network.name} ({found.objective}; {how})\n"
                 f"design: {_fmt_design(found.design) if found.design else 'one per layer (see --json)'}")
        _print_result(found.result, board, title)
        for p in found.presets:
            state = "fits" if p["fits"] else "over budget: " + "; ".join(p["violations"])
            print(f"preset {p['preset']}: {p['latency_ms']:.4f} ms ({state})")
        return 0

    design = _design(args, model)
    from accelerators.fpga import hotnas_network, zhang15_network

    run = hotnas_network if model == "hotnas" else zhang15_network
    result = run(network, design, board, allow_over_budget=args.allow_over_budget)
    if args.json:
        emit_json({"workload": network.name, "preset": args.preset, **result.to_dict()})
        return 0
    name = f"preset {args.preset}" if args.preset else "design"
    _print_result(result, board, f"{model} {name} on {board.name} for {network.name}: {_fmt_design(design.to_dict())}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("fpga", help="a network on an FPGA tiling design (zhang15 / hotnas), a preset, "
                                    "or a design search")
    p.add_argument("--board", help="zcu102, vc707, zc706, ultra96, pynq-z2, or a board YAML path")
    p.add_argument("--model", choices=["zhang15", "hotnas"],
                   help="template (default: hotnas; zhang15 when --design has no Tmd/Ip/Op/Wp)")
    p.add_argument("--design", metavar="K=V,...",
                   help='zhang15: "Tm=64,Tn=7,Tr=13,Tc=13"; hotnas: "Tm=..,Tn=..,Tr=..,Tc=..,Tmd=..,Ip=..,Op=..,Wp=.."')
    p.add_argument("--preset", metavar="NAME", help="a hotnas preset (zcu102-1 ... zcu102-9)")
    p.add_argument("--search", action="store_true", help="search the best design that fits the board")
    p.add_argument("--workload", default=DEFAULT_WORKLOAD,
                   help=f"zoo name or network file (default {DEFAULT_WORKLOAD})")
    p.add_argument("--resolution", type=int_in(1, MAX_RESOLUTION))
    p.add_argument("--dtype", choices=["fp32", "fix16"], help="zhang15 data type (default fp32)")
    p.add_argument("--objective", choices=["latency", "edp"], help="search objective (default latency)")
    p.add_argument("--mode", choices=["cross-layer", "layer-specific"], help="search mode (default cross-layer)")
    p.add_argument("--seed", type=seed_arg(), help="search seed (default 0)")
    p.add_argument("--budget", type=int_in(1, MAX_SEARCH_BUDGET),
                   help="nevergrad evaluations when the grid is too large to enumerate")
    p.add_argument("--clock-mhz", type=float_in(MIN_CLOCK_MHZ, MAX_CLOCK_MHZ),
                   help="design clock (default: the board's)")
    p.add_argument("--limit", metavar="K=V,...", help="override board budgets, e.g. dsp=2240,bram36=800")
    p.add_argument("--allow-over-budget", action="store_true",
                   help="report a design that breaks the board's limits instead of failing")
    p.add_argument("--list", action="store_true", help="list the boards and presets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
