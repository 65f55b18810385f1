"""``codesign bench mapper``: mapping quality and speed of a mapping optimizer against the
exhaustive optimum, on zoo layers small enough for exhaustive search."""
from __future__ import annotations

import os
import platform
import statistics
import time

NAME = "mapper"
HELP = "EDP of a mapping optimizer vs. the exhaustive optimum on small zoo layers, and its time per layer"

TARGETS = {"median_ratio": 1.05, "worst_ratio": 1.25, "median_seconds": 0.1}

# (kind, zoo network, input size, layer name, the same shape for Layer.conv / Layer.fc when the
# zoo is unavailable: ("conv", in_ch, out_ch, out_hw, kernel, stride, groups) or ("fc", in, out))
BENCH_LAYERS = (
    ("7x7 stem", "resnet18", 8, "conv1", ("conv", 3, 64, 4, 7, 2, 1)),
    ("3x3 stem", "mobilenet_v3_large", 16, "features.0.0", ("conv", 3, 16, 8, 3, 2, 1)),
    ("3x3", "resnet18", 8, "layer2.0.conv1", ("conv", 64, 128, 1, 3, 2, 1)),
    ("3x3", "resnet18", 16, "layer3.0.conv1", ("conv", 128, 256, 1, 3, 2, 1)),
    ("3x3", "resnet18", 16, "layer4.0.conv2", ("conv", 512, 512, 1, 3, 1, 1)),
    ("3x3", "squeezenet1_1", 32, "features.11.expand3x3", ("conv", 64, 256, 1, 3, 1, 1)),
    ("depthwise 3x3", "mobilenet_v2", 32, "features.1.conv.0.0", ("conv", 32, 32, 16, 3, 1, 32)),
    ("depthwise 3x3", "mobilenet_v2", 32, "features.2.conv.1.0", ("conv", 96, 96, 8, 3, 2, 96)),
    ("depthwise 3x3", "mobilenet_v2", 32, "features.4.conv.1.0", ("conv", 144, 144, 4, 3, 2, 144)),
    ("depthwise 3x3", "mobilenet_v2", 32, "features.8.conv.1.0", ("conv", 384, 384, 2, 3, 1, 384)),
    ("depthwise 5x5", "mobilenet_v3_large", 32, "features.4.block.1.0", ("conv", 72, 72, 4, 5, 2, 72)),
    ("depthwise 5x5", "mobilenet_v3_large", 32, "features.14.block.1.0", ("conv", 960, 960, 1, 5, 1, 960)),
    ("pointwise", "mobilenet_v2", 32, "features.7.conv.2", ("conv", 192, 64, 2, 1, 1, 1)),
    ("pointwise", "mobilenet_v2", 32, "features.14.conv.2", ("conv", 576, 160, 1, 1, 1, 1)),
    ("pointwise", "mobilenet_v2", 32, "features.18.0", ("conv", 320, 1280, 1, 1, 1, 1)),
    ("pointwise", "squeezenet1_1", 32, "features.6.squeeze", ("conv", 128, 32, 3, 1, 1, 1)),
    ("pointwise", "squeezenet1_1", 32, "features.3.expand1x1", ("conv", 16, 64, 7, 1, 1, 1)),
    ("pointwise", "resnet18", 16, "layer3.0.downsample.0", ("conv", 128, 256, 1, 1, 2, 1)),
    ("pointwise", "mobilenet_v3_large", 32, "features.9.block.0.0", ("conv", 80, 184, 2, 1, 1, 1)),
    ("fc", "resnet18", 32, "fc", ("fc", 512, 1000)),
    ("fc", "mobilenet_v2", 32, "classifier.1", ("fc", 1280, 1000)),
    ("fc", "mobilenet_v3_large", 32, "features.4.block.2.fc1", ("fc", 72, 24)),
    ("fc", "mobilenet_v3_large", 32, "classifier.0", ("fc", 960, 1280)),
)


def _fallback(name: str, spec):
    from models.layer import Layer

    if spec[0] == "fc":
        return Layer.fc(name, spec[1], spec[2])
    _, cin, cout, hw, k, stride, groups = spec
    return Layer.conv(name, cin, cout, hw, k, stride=stride, groups=groups)


def benchmark_layers() -> list[tuple[str, object]]:
    """``(kind, layer)`` of the benchmark set, named ``network@size/layer``."""
    out, nets = [], {}
    for kind, net, res, lname, spec in BENCH_LAYERS:
        name = f"{net}@{res}/{lname}"
        layer = None
        try:
            from models.zoo import get_network

            if (net, res) not in nets:
                nets[(net, res)] = {l.name: l for l in get_network(net, resolution=res).layers}
            layer = nets[(net, res)].get(lname)
        except Exception:  # the zoo is optional here: the fallback shape is the same layer
            layer = None
        out.append((kind, layer.renamed(name) if layer is not None else _fallback(name, spec)))
    return out


MAX_ACCELERATORS = 64


def add_arguments(p) -> None:
    from codesign.cli._common import int_in, seed_arg

    p.add_argument("--accelerators", default=None,
                   help="comma-separated presets or accelerator YAML paths (default: every preset)")
    p.add_argument("--optimizer", default="auto",
                   help="mapping optimizer under test (default auto); several, comma-separated, are compared "
                        "on the same exhaustive optima and the first is reported in full")
    p.add_argument("--objective", default="edp", choices=("edp", "energy", "latency"))
    p.add_argument("--seed", type=seed_arg(), default=0)
    p.add_argument("--layers", type=int_in(1, len(BENCH_LAYERS)), default=None,
                   help=f"only the first N benchmark layers (1 to {len(BENCH_LAYERS)})")


def _summary(rows: list[dict]) -> dict:
    ratios = [r["ratio"] for r in rows]
    secs = [r["seconds"] for r in rows]
    out = {"median_ratio": statistics.median(ratios), "worst_ratio": max(ratios),
           "exact_fraction": sum(r <= 1.0 + 1e-9 for r in ratios) / len(ratios),
           "median_seconds": statistics.median(secs), "max_seconds": max(secs),
           "median_evaluated": statistics.median(r["evaluated"] for r in rows)}
    out["meets_targets"] = (out["median_ratio"] <= TARGETS["median_ratio"]
                            and out["worst_ratio"] <= TARGETS["worst_ratio"]
                            and out["median_seconds"] <= TARGETS["median_seconds"])
    return out


def run(args) -> dict:
    from accelerators import load_accelerator, preset_names
    from accelerators.kernel import set_threads
    from mappings.optimizers import check_objective, check_optimizer, optimize
    from models.errors import CodesignError

    optimizers = [o.strip() for o in args.optimizer.split(",") if o.strip()]
    names = [a.strip() for a in args.accelerators.split(",") if a.strip()] if args.accelerators else preset_names()
    for what, items in (("--optimizer", optimizers), ("--accelerators", names)):
        if not items:
            raise CodesignError(f"{what}: empty list")
        twice = sorted({x for x in items if items.count(x) > 1})
        if twice:
            raise CodesignError(f"{what}: {twice[0]} given twice")
    if len(names) > MAX_ACCELERATORS:
        raise CodesignError(f"--accelerators: {len(names)} given, at most {MAX_ACCELERATORS}")
    n_layers = len(BENCH_LAYERS) if args.layers is None else args.layers
    if not 1 <= n_layers <= len(BENCH_LAYERS):
        raise CodesignError(f"--layers {n_layers} is out of range: accepted 1 to {len(BENCH_LAYERS)}")
    for o in optimizers:
        check_optimizer(o)
    check_objective(args.objective)
    set_threads(1)
    accs = [load_accelerator(a) for a in names]
    layers = benchmark_layers()[:n_layers]
    t0 = time.perf_counter()
    optimize(layers[0][1], accs[0], optimizer=optimizers[0], objective=args.objective, seed=args.seed)
    jit_s = time.perf_counter() - t0
    rows = {o: [] for o in optimizers}
    exhaustive_s = 0.0
    for acc in accs:
        for kind, layer in layers:
            exact = optimize(layer, acc, optimizer="exhaustive", objective=args.objective)
            exhaustive_s += exact.seconds
            for o in optimizers:
                got = optimize(layer, acc, optimizer=o, objective=args.objective, seed=args.seed)
                rows[o].append({"accelerator": acc.name, "layer": layer.name, "kind": kind,
                                "dims": layer.dims, "stride": layer.stride,
                                "optimum": exact.value, "found": got.value, "ratio": got.value / exact.value,
                                "seconds": got.seconds, "evaluated": got.evaluated,
                                "exhaustive_evaluated": exact.evaluated, "exhaustive_seconds": exact.seconds})
    main = optimizers[0]
    out = {"optimizer": main, "objective": args.objective, "accelerators": [a.name for a in accs],
           "layers": len(layers), "cases": len(rows[main]), **_summary(rows[main]),
           "exhaustive_seconds_total": exhaustive_s, "jit_warmup_s": jit_s, "targets": TARGETS,
           "cores": 1, "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
           "cases_detail": rows[main]}
    if len(optimizers) > 1:
        out["compared"] = {o: _summary(rows[o]) for o in optimizers}
    return out


def format_text(r: dict) -> str:
    lines = [f"{'accelerator':<11} {'layer':<44} {'ratio':>7} {'seconds':>8} {'evaluated':>9}"]
    for c in r["cases_detail"]:
        lines.append(f"{c['accelerator']:<11} {c['layer']:<44} {c['ratio']:>7.4f} {c['seconds']:>8.3f} "
                     f"{c['evaluated']:>9}")
    lines.append(f"{r['optimizer']} vs exhaustive ({r['objective']}), {r['layers']} layers x "
                 f"{len(r['accelerators'])} accelerators: median ratio {r['median_ratio']:.4f} "
                 f"(target <= {TARGETS['median_ratio']}), worst {r['worst_ratio']:.4f} "
                 f"(<= {TARGETS['worst_ratio']}), exact in {100 * r['exact_fraction']:.0f} %, median "
                 f"{r['median_seconds']:.3f} s per layer (<= {TARGETS['median_seconds']}), one core; "
                 f"{'meets' if r['meets_targets'] else 'MISSES'} the targets")
    for o, c in r.get("compared", {}).items():
        lines.append(f"  {o:<10} median {c['median_ratio']:.4f} worst {c['worst_ratio']:.4f} exact "
                     f"{100 * c['exact_fraction']:.0f} % median {c['median_seconds']:.3f} s "
                     f"max {c['max_seconds']:.3f} s")
    return "\n".join(lines)
