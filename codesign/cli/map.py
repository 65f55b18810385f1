"""``codesign map``: the best mapping of one layer on one accelerator, as a loop nest and a cost."""
from __future__ import annotations

from ._common import MAX_MAP_BUDGET, emit_json, int_in, seed_arg

OPTIMIZER_CHOICES = ("auto", "heuristic", "random", "evolution", "exhaustive")
OBJECTIVE_CHOICES = ("edp", "energy", "latency")


def cost_lines(cost, lb) -> list[str]:
    comp = ", ".join(f"{k} {v / 1e6:.3f}" for k, v in cost.energy_by_component.items())
    return [
        f"cycles      {cost.cycles:,} ({cost.latency_ms:.4f} ms at {cost.clock_mhz:g} MHz; bound: {cost.bound})",
        f"  phases    start-up {cost.startup_cycles:,} + steady {cost.cycles - cost.startup_cycles - cost.tail_cycles:,}"
        f" (compute {cost.compute_cycles:,}, array pipeline {cost.pipeline_cycles:,}) + tail {cost.tail_cycles:,}",
        f"energy      {cost.energy_pj / 1e6:.4f} uJ  ({comp} uJ)",
        f"EDP         {cost.edp:.4e} pJ*cycles",
        f"utilization {100 * cost.utilization:.1f} %",
        f"lower bound EDP {lb.edp:.4e} pJ*cycles (cycles {lb.cycles:,}, energy {lb.energy_pj / 1e6:.4f} uJ); "
        f"ratio {cost.edp / lb.edp:.3f}",
    ]


def _run(args) -> int:
    from accelerators import load_accelerator, lower_bound
    from mappings.optimizers import optimize
    from models.layer import Layer

    layer = Layer.parse(args.layer, name=args.name)
    acc = load_accelerator(args.accelerator)
    res = optimize(layer, acc, optimizer=args.optimizer, objective=args.objective, seed=args.seed,
                   budget=args.budget)
    lb = lower_bound(layer, acc)
    if args.json:
        emit_json({"layer": {"name": layer.name, "dims": layer.dims, "stride": layer.stride,
                             "dilation": layer.dilation, "padding": layer.padding, "macs": layer.macs},
                   "accelerator": acc.name, **res.to_dict(), "lower_bound": lb.to_dict(),
                   "ratio_to_lower_bound": res.cost.edp / lb.edp,
                   "loop_nest": res.mapping.pretty(layer, acc)})
        return 0
    dims = " ".join(f"{k}={v}" for k, v in layer.dims.items() if v != 1)
    print(f"layer {dims} stride {layer.stride} ({layer.macs:,} MACs) on {acc.name} ({acc.num_pes} PEs); "
          f"optimizer {res.optimizer}, objective {res.objective}: {res.evaluated:,} mappings in {res.seconds:.3f} s")
    print()
    print(res.mapping.pretty(layer, acc))
    print()
    print("\n".join(cost_lines(res.cost, lb)))
    return 0


def register(sub) -> None:
    p = sub.add_parser("map", help="find the best mapping of one layer on an accelerator")
    p.add_argument("--accelerator", required=True, metavar="NAME|PATH", help="preset name or accelerator YAML")
    p.add_argument("--layer", required=True, metavar="SPEC",
                   help='loop bounds, e.g. "K=64,C=64,P=56,Q=56,R=3,S=3[,stride=2]" (missing dims are 1)')
    p.add_argument("--name", default="layer", help="layer name used in messages")
    p.add_argument("--optimizer", default="auto", choices=OPTIMIZER_CHOICES)
    p.add_argument("--objective", default="edp", choices=OBJECTIVE_CHOICES)
    p.add_argument("--seed", type=seed_arg(), default=0)
    p.add_argument("--budget", type=int_in(1, MAX_MAP_BUDGET), default=None,
                   help="optimizer budget (see mappings.optimizers.optimize)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
