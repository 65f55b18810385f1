"""``codesign schedule``: search the fused (depth-first) schedule of a workload on an accelerator
and print its stacks, tiles, DRAM traffic and peak buffer use beside layer-by-layer."""
from __future__ import annotations

import os

from models.errors import WorkloadError

from ._common import MAX_RESOLUTION, emit_json, float_in, int_in, seed_arg
from .map import OPTIMIZER_CHOICES

MIN_PEAK_KB, MAX_PEAK_KB = 0.0, 2.0 ** 30   # a bound on the peak global-buffer use

OVERLAP_CHOICES = ("recompute", "cache", "recompute,cache")


def schedule_text(sc, baseline=None) -> str:
    """The stacks of a ``ScheduleCost`` as a table, and its totals against ``baseline``."""
    lines = [f"{sc.network} on {sc.accelerator}, schedule '{sc.schedule.name}': {len(sc.stacks)} stacks",
             f"{'stack (first .. last layer)':<52} {'tile':>9} {'overlap':>9} {'tiles':>6} {'cycles':>11} "
             f"{'energy uJ':>10} {'DRAM W':>9} {'DRAM act':>10} {'GLB kB':>7}"]
    for s in sc.stacks:
        names = s.names[0] if len(s.names) == 1 else f"{s.names[0]} .. {s.names[-1]} ({len(s.names)})"
        tile = "whole" if s.stack.tile is None else f"{s.stack.tile[0]}x{s.stack.tile[1]}"
        overlap = s.stack.overlap if s.tiles > 1 else "-"
        lines.append(f"{names[:52]:<52} {tile:>9} {overlap:>9} {s.tiles:>6,} {s.cycles:>11,} "
                     f"{s.energy_pj / 1e6:>10.3f} {s.dram_words['weights']:>9,.0f} "
                     f"{s.dram_words['activations']:>10,.0f} {s.peak_glb_bytes / 1024:>7.1f}")
    d = sc.dram_words
    comp = ", ".join(f"{k} {v / 1e6:.2f}" for k, v in sc.energy_by_component.items())
    lines += ["", f"total: {sc.cycles:,} cycles ({sc.latency_ms:.3f} ms), energy {sc.energy_pj / 1e6:.2f} uJ ({comp} uJ)",
              f"       EDP {sc.edp:.4e} pJ*cycles; DRAM {d['weights'] + d['activations']:,.0f} words "
              f"(weights {d['weights']:,.0f}, activations {d['activations']:,.0f}); recomputed MACs "
              f"{sc.macs - sc.layer_macs:,} ({100 * (sc.macs - sc.layer_macs) / sc.layer_macs:.1f} %); "
              f"peak global buffer {sc.peak_glb_bytes / 1024:.1f} kB"]
    if baseline is not None:
        b, bd = baseline, baseline.dram_words
        lines.append(f"vs layer-by-layer: EDP {b.edp / sc.edp:.2f}x better, energy {b.energy_pj / sc.energy_pj:.2f}x, "
                     f"cycles {b.cycles / sc.cycles:.2f}x, DRAM traffic "
                     f"{(bd['weights'] + bd['activations']) / (d['weights'] + d['activations']):.2f}x less "
                     f"(ratios above 1 favour this schedule; peak global buffer {b.peak_glb_bytes / 1024:.1f} kB "
                     f"layer by layer)")
    return "\n".join(lines)


def load_schedule(spec: str, network):
    """``layer``, ``fused`` (searched by the caller) or a schedule file written by ``--out``."""
    from mappings.schedule import layer_by_layer, schedule_from_dict
    from models.inputs import load_yaml_file
    if spec == "layer":
        return layer_by_layer(network)
    if not os.path.isfile(spec):
        raise WorkloadError(f"--schedule: expected layer, fused or a schedule file; no file '{spec}'")
    return schedule_from_dict(load_yaml_file(spec, error=WorkloadError), network, source=spec)


def _run(args) -> int:
    from codesign.search.schedule import search_schedule
    from mappings.schedule import StackMapper, evaluate_schedule

    from .evaluate import load_network

    net = load_network(args.workload, args.resolution)
    sm = StackMapper(net, args.accelerator, optimizer=args.optimizer, seed=args.seed)
    overlaps = tuple(args.overlap.split(","))
    bound = None if args.max_peak_kb is None else args.max_peak_kb * 1024
    sc = search_schedule(net, sm.acc, objective=args.objective, max_layers=args.max_layers, overlaps=overlaps,
                         mapper=sm, max_peak_bytes=bound)
    base = evaluate_schedule(net, sm.acc, mapper=sm)
    if args.out:
        import yaml
        try:
            with open(args.out, "w") as f:
                yaml.safe_dump(sc.schedule.to_dict(net), f, sort_keys=False)
        except OSError as e:
            raise WorkloadError(f"--out: cannot write '{args.out}' ({e.strerror})") from None
    if args.json:
        emit_json({**sc.to_dict(), "layer_by_layer": base.to_dict()["total"]})
    else:
        print(schedule_text(sc, base))
        if args.out:
            print(f"schedule written to {args.out} (replay: codesign evaluate --schedule {args.out} ...)")
    return 0


def register(sub) -> None:
    from codesign.search.schedule import DEFAULT_MAX_LAYERS, MAX_STACK_LAYERS, SCHEDULE_OBJECTIVES
    p = sub.add_parser("schedule", help="search a fused (depth-first) schedule: stacks, tiles, DRAM traffic")
    p.add_argument("--accelerator", required=True, metavar="NAME|PATH", help="preset name or accelerator YAML")
    p.add_argument("--workload", required=True, metavar="NAME|PATH", help="zoo network name or a workload file")
    p.add_argument("--resolution", type=int_in(1, MAX_RESOLUTION), default=None, help="input size for zoo networks")
    p.add_argument("--objective", default="edp", choices=SCHEDULE_OBJECTIVES,
                   help="what the schedule minimizes (memory: the peak global-buffer bytes, then EDP)")
    p.add_argument("--max-peak-kb", type=float_in(MIN_PEAK_KB, MAX_PEAK_KB, lo_open=True), default=None, metavar="KB",
                   help="bound on the schedule's peak global-buffer use (kB of 1,024 bytes)")
    p.add_argument("--max-layers", type=int_in(1, MAX_STACK_LAYERS), default=DEFAULT_MAX_LAYERS,
                   help=f"most layers in one stack (default {DEFAULT_MAX_LAYERS})")
    p.add_argument("--overlap", default="recompute,cache", choices=OVERLAP_CHOICES,
                   metavar="recompute|cache|recompute,cache",
                   help="overlap policies tried for tiled stacks (default both)")
    p.add_argument("--optimizer", default="auto", choices=OPTIMIZER_CHOICES, help="mapper of every tile")
    p.add_argument("--seed", type=seed_arg(), default=0)
    p.add_argument("--out", default=None, metavar="FILE", help="save the schedule (YAML) for --schedule FILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
