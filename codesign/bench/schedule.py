"""``codesign bench schedule``: how long a depth-first schedule search takes on a whole network
(cold: every tile shape mapped; warm: the tile mappings read from an on-disk mapping cache, as a
second run with ``CODESIGN_MAPPING_CACHE`` finds them), and how long our side of the Stream
comparison takes against Stream's checked-in wall time for the same three schedules."""
from __future__ import annotations

import os
import platform
import tempfile
import time

NAME = "schedule"
HELP = "seconds of a fused schedule search (cold and warm mapping cache) and of the Stream comparison's schedules"


def add_arguments(p) -> None:
    from codesign.cli._common import MAX_RESOLUTION, int_in
    from codesign.cli.map import OPTIMIZER_CHOICES
    from codesign.search.schedule import DEFAULT_MAX_LAYERS, MAX_STACK_LAYERS

    p.add_argument("--accelerator", default="eyeriss", metavar="NAME|PATH", help="preset name or accelerator YAML")
    p.add_argument("--workload", default="resnet50", metavar="NAME|PATH", help="zoo network name or a workload file")
    p.add_argument("--resolution", type=int_in(1, MAX_RESOLUTION), default=None, help="input size for zoo networks")
    p.add_argument("--optimizer", default="auto", choices=OPTIMIZER_CHOICES, help="mapper of every tile")
    p.add_argument("--max-layers", type=int_in(1, MAX_STACK_LAYERS), default=DEFAULT_MAX_LAYERS,
                   help=f"most layers in one stack (default {DEFAULT_MAX_LAYERS})")
    p.add_argument("--no-stream", action="store_true", help="skip the Stream comparison's timing")


def _search(net, accelerator, optimizer: str, max_layers: int, directory: str):
    from codesign.search.schedule import search_schedule
    from mappings.cache import MappingCache
    from mappings.schedule import StackMapper

    t0 = time.perf_counter()
    sm = StackMapper(net, accelerator, optimizer=optimizer, cache=MappingCache(directory))
    sc = search_schedule(net, sm.acc, max_layers=max_layers, mapper=sm)
    return time.perf_counter() - t0, sc


def run(args) -> dict:
    from codesign.cli.evaluate import load_network

    net = load_network(args.workload, args.resolution)
    with tempfile.TemporaryDirectory() as d:
        cold, sc = _search(net, args.accelerator, args.optimizer, args.max_layers, d)
        warm, again = _search(net, args.accelerator, args.optimizer, args.max_layers, d)
    if again.edp != sc.edp:  # the cache must not change the answer
        raise RuntimeError(f"warm search EDP {again.edp} differs from the cold one {sc.edp}")
    out = {"workload": net.name, "layers": len(net.layers), "accelerator": args.accelerator,
           "optimizer": args.optimizer, "max_layers": args.max_layers, "stacks": len(sc.stacks),
           "edp": sc.edp, "cold_s": cold, "warm_s": warm,
           "cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}
    if not args.no_stream:
        out["stream"] = _stream()
    return out


def _stream() -> dict:
    """Our side of ``codesign validate stream`` (three schedules of four ResNet-18 convolutions on
    Stream's Eyeriss-like core) against Stream's checked-in wall time for them; 'cold' is the
    first comparison in this process (its tile shapes mapped), 'warm' a second one."""
    from codesign.validation.peers import stream_compare as sc

    data = sc.load_data()
    theirs = [r["wall_seconds"] for r in data["runs"]]
    t0 = time.perf_counter()
    sc.compare(data)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    sc.compare(data)
    warm = time.perf_counter() - t0
    n = len(theirs)
    return {"schedules": n, "stream_s_per_schedule": [min(theirs), max(theirs)],
            "ours_cold_s_per_schedule": cold / n, "ours_warm_s_per_schedule": warm / n,
            "speedup_cold": min(theirs) / (cold / n), "speedup_warm": min(theirs) / (warm / n),
            "stream_source": f"checked-in run of Stream {data['version']}: {data['command']}"}


def format_text(r: dict) -> str:
    lines = [f"{r['workload']} ({r['layers']} layers) on {r['accelerator']}, {r['optimizer']} mapper, stacks of up "
             f"to {r['max_layers']} layers: {r['stacks']} stacks, EDP {r['edp']:.4e}",
             f"schedule search: {r['cold_s']:.2f} s cold (every tile shape mapped), {r['warm_s']:.2f} s warm "
             f"(tile mappings from the on-disk cache)"]
    s = r.get("stream")
    if s:
        lo, hi = s["stream_s_per_schedule"]
        lines.append(f"Stream comparison, {s['schedules']} schedules: ours {s['ours_cold_s_per_schedule']:.3f} s per "
                     f"schedule cold, {s['ours_warm_s_per_schedule']:.3f} s warm; Stream {lo:.1f}-{hi:.1f} s "
                     f"(its checked-in run): at least {s['speedup_cold']:.0f}x cold, {s['speedup_warm']:.0f}x warm")
    return "\n".join(lines)
