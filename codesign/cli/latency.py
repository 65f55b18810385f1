"""``codesign latency``: one network's latency on one backend (analytical model, FPGA design,
lookup table, measured PyTorch / ONNX Runtime, or a remote board agent)."""
from __future__ import annotations

from models.errors import CodesignError

from ._common import (MAX_REPEATS, MAX_RESOLUTION, MAX_WARMUP, MAX_WORKERS, emit_json, finite, int_in,
                      load_json_arg)

MEASURED = ("torch-cpu", "torch-cuda", "onnxruntime")


def _target(args):
    from codesign.validation.latency import as_target

    if (args.workload is None) == (args.arch is None):
        raise CodesignError("give exactly one of --workload or --arch")
    if args.workload is not None:
        if args.space:
            raise CodesignError("--space goes with --arch, not --workload")
        return as_target(args.workload, resolution=args.resolution)
    arch = load_json_arg(args.arch, "--arch")
    if not isinstance(arch, dict):
        raise CodesignError("--arch must be a JSON object (an arch, or an OFA net.config)")
    from models.importers import is_net_config
    if is_net_config(arch):
        return as_target(arch, resolution=args.resolution)
    if args.resolution is not None:
        arch = {**arch, "r": args.resolution}
    return as_target(arch, space=args.space)


def _backend(args):
    from codesign.validation.latency import get_backend, split_spec

    scheme, _ = split_spec(args.backend)
    options = {}
    measured = {"repeats": args.repeats, "warmup": args.warmup, "threads": args.threads}
    given = [k for k, v in measured.items() if v is not None]
    if given and scheme not in MEASURED:
        raise CodesignError(f"--{given[0]} applies to the measured backends ({', '.join(MEASURED)}), "
                            f"not {args.backend}")
    if scheme in MEASURED:
        options.update({k: v for k, v in measured.items() if v is not None})
    if args.mapper is not None:
        if scheme != "analytical":
            raise CodesignError(f"--mapper applies to analytical: backends, not {args.backend}")
        options["mapper"] = args.mapper
    return get_backend(args.backend, **options)


def _run(args) -> int:
    backend = _backend(args)
    target = _target(args)
    res = backend.measure(target)
    finite(res.ms, "the latency (ms)")
    finite(res.spread, "the latency spread (ms)")
    name = target.network.name
    if args.json:
        emit_json({"target": name, **res.to_dict()})
        return 0
    print(f"{name}: {res.ms:.2f} ms ± {res.spread:.2f} ({res.backend}, {res.samples} samples)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("latency", help="a network's latency on one backend (analytical:, fpga:, lut:, "
                                       "torch-cpu, torch-cuda, onnxruntime, remote:)")
    p.add_argument("--backend", required=True, metavar="SPEC",
                   help="analytical:eyeriss, fpga:zcu102:zcu102-1, lut:note10, lut:proxyless-mobile, "
                        "lut:<table.yaml>, torch-cpu, torch-cuda, onnxruntime, remote:http://host:port")
    p.add_argument("--workload", metavar="NAME|PATH", help="zoo name or network file (ONNX, JSON, net.config)")
    p.add_argument("--arch", metavar="JSON|PATH",
                   help="a search-space architecture (with --space) or an OFA net.config, inline or a file")
    p.add_argument("--space", help="search space of --arch (e.g. ofa-mbv3)")
    p.add_argument("--resolution", type=int_in(1, MAX_RESOLUTION),
                   help="input size (zoo networks, net.config, OFA archs)")
    p.add_argument("--repeats", type=int_in(1, MAX_REPEATS), help="timed runs (measured backends; default 10)")
    p.add_argument("--warmup", type=int_in(0, MAX_WARMUP), help="untimed runs first (measured backends; default 3)")
    p.add_argument("--threads", type=int_in(1, MAX_WORKERS), help="intra-op threads (measured backends; default 1)")
    p.add_argument("--mapper", help="mapping optimizer of analytical: backends (default heuristic)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
