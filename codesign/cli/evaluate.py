"""``codesign evaluate``: map every layer of a workload on an accelerator and total the cost."""
from __future__ import annotations

from models.errors import WorkloadError

from ._common import MAX_MAP_BUDGET, MAX_RESOLUTION, emit_json, int_in, seed_arg, writable_dir
from .map import OBJECTIVE_CHOICES, OPTIMIZER_CHOICES


def load_network(spec: str, resolution: int | None = None):
    """A zoo name or a workload file, through the importers when they are available."""
    try:
        from models.importers import load_workload
    except ImportError:
        load_workload = None
    if load_workload is not None:
        return load_workload(spec, resolution=resolution)
    try:
        from models.zoo import get_network, canonical_name
    except ImportError:
        get_network = canonical_name = None
    if get_network is not None and canonical_name(spec) is not None:
        return get_network(spec, resolution=resolution)
    import os

    from models.inputs import load_json_file
    from models.network import Network
    if not os.path.isfile(spec):
        raise WorkloadError(f"unknown workload '{spec}' (a zoo name or a Network JSON file)")
    data = load_json_file(spec, error=WorkloadError)
    try:
        return Network.from_dict(data)
    except (KeyError, TypeError, ValueError) as e:
        raise WorkloadError(f"{spec}: not a network ({e})") from None


def _text(nc) -> str:
    lines = [f"{nc.network} on {nc.accelerator} ({nc.optimizer}, {nc.objective}): {len(nc.layers)} layers, "
             f"{nc.distinct_shapes} distinct shapes mapped in {nc.seconds:.2f} s",
             f"{'layer':<32} {'dims (K C P Q R S, G)':<28} {'cycles':>12} {'energy uJ':>10} {'EDP':>10} "
             f"{'util':>6} {'bound':>7} {'EDP/LB':>7}"]
    for l in nc.layers:
        d = l.layer.dims
        dims = f"{d['K']} {d['C']} {d['P']} {d['Q']} {d['R']} {d['S']}" + (f", G={d['G']}" if d["G"] > 1 else "")
        c = l.cost
        lines.append(f"{l.name[:32]:<32} {dims:<28} {c.cycles:>12,} {c.energy_pj / 1e6:>10.3f} {c.edp:>10.3e} "
                     f"{100 * c.utilization:>5.1f}% {c.bound:>7} {l.ratio_to_lower_bound:>7.2f}")
    for a in nc.aux:
        lines.append(f"{a.name[:32]:<32} {a.kind + ' (non-MAC)':<28} {a.cycles:>12,} {a.energy_pj / 1e6:>10.3f} "
                     f"{a.energy_pj * a.cycles:>10.3e} {'':>6} {a.bound:>7} {'':>7}")
    t = nc.total
    comp = ", ".join(f"{k} {v / 1e6:.2f}" for k, v in t.energy_by_component.items())
    lines += ["",
              f"total: {t.macs:,} MACs, {t.cycles:,} cycles ({t.latency_ms:.3f} ms), energy {t.energy_pj / 1e6:.2f} uJ "
              f"({comp} uJ)",
              f"       EDP {t.edp:.4e} pJ*cycles, utilization {100 * t.utilization:.1f} %, lower-bound EDP "
              f"{t.lower_bound_edp:.4e} (ratio {t.ratio_to_lower_bound:.2f})"]
    return "\n".join(lines)


def _run(args) -> int:
    from mappings.cache import MappingCache, default_cache
    from mappings.evaluate import evaluate_network

    cache_dir = writable_dir(args.cache_dir, "--cache-dir") if args.cache_dir is not None else None
    net = load_network(args.workload, args.resolution)
    cache = MappingCache(cache_dir) if cache_dir is not None else default_cache()
    if args.schedule != "layer":
        return _run_schedule(args, net, cache)
    nc = evaluate_network(net, args.accelerator, optimizer=args.optimizer, objective=args.objective,
                          cache=cache, seed=args.seed, budget=args.budget, progress=not args.json,
                          aux=args.aux)
    if args.json:
        emit_json(nc.to_dict())
    else:
        print(_text(nc))
    return 0


def _run_schedule(args, net, cache) -> int:
    """``--schedule fused|FILE``: the network's cost under a fused schedule, per stack."""
    from codesign.search.schedule import search_schedule
    from mappings.schedule import StackMapper, evaluate_schedule

    from .schedule import load_schedule, schedule_text

    sm = StackMapper(net, args.accelerator, optimizer=args.optimizer, objective=args.objective, cache=cache,
                     seed=args.seed, budget=args.budget)
    if args.schedule == "fused":
        objective = args.objective if args.objective in ("edp", "energy", "latency") else "edp"
        sc = search_schedule(net, sm.acc, objective=objective, mapper=sm)
        if args.aux:
            sc = evaluate_schedule(net, sm.acc, sc.schedule, mapper=sm, aux=True)
    else:
        sc = evaluate_schedule(net, sm.acc, load_schedule(args.schedule, net), mapper=sm, aux=args.aux)
    base = evaluate_schedule(net, sm.acc, mapper=sm, aux=args.aux)
    if args.json:
        emit_json({**sc.to_dict(), "layer_by_layer": base.to_dict()["total"]})
    else:
        print(schedule_text(sc, base))
    return 0


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="map every layer of a workload on an accelerator and total the cost")
    p.add_argument("--accelerator", required=True, metavar="NAME|PATH", help="preset name or accelerator YAML")
    p.add_argument("--workload", required=True, metavar="NAME|PATH", help="zoo network name or a workload file")
    p.add_argument("--resolution", type=int_in(1, MAX_RESOLUTION), default=None, help="input size for zoo networks")
    p.add_argument("--optimizer", default="auto", choices=OPTIMIZER_CHOICES)
    p.add_argument("--objective", default="edp", choices=OBJECTIVE_CHOICES)
    p.add_argument("--seed", type=seed_arg(), default=0)
    p.add_argument("--budget", type=int_in(1, MAX_MAP_BUDGET), default=None, help="optimizer budget per layer shape")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="keep mapping results on disk in DIR (default: $CODESIGN_MAPPING_CACHE, else memory only)")
    p.add_argument("--aux", action="store_true",
                   help="also cost pooling / element-wise operators (unfused passes over DRAM)")
    p.add_argument("--schedule", default="layer", metavar="layer|fused|FILE",
                   help="layer-by-layer (default), a searched fused schedule, or a schedule file "
                        "(codesign schedule --out)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
