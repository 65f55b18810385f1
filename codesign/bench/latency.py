"""``codesign bench latency``: how fast each latency backend measures sub-networks of a search
space (fresh backend instances, distinct sampled architectures)."""
from __future__ import annotations

import os
import platform
import time

NAME = "latency"
HELP = "architectures per second of latency backends over sampled sub-networks of a search space"
DEFAULT_BACKENDS = "lut:note10,analytical:eyeriss,fpga:zcu102:zcu102-1,torch-cpu,onnxruntime"
MAX_SAMPLES = 1_000       # architectures per backend
MAX_BACKENDS = 32


def add_arguments(p) -> None:
    from codesign.cli._common import int_in, seed_arg

    p.add_argument("--backends", default=DEFAULT_BACKENDS, metavar="SPEC,SPEC,...")
    p.add_argument("--space", default="ofa-mbv3", help="search space the architectures are sampled from")
    p.add_argument("--samples", type=int_in(1, MAX_SAMPLES), default=20, help="distinct architectures per backend")
    p.add_argument("--seed", type=seed_arg(), default=0)


def run(args) -> dict:
    import numpy as np

    from codesign.validation.latency import get_backend
    from models.errors import CodesignError
    from models.spaces import get_space

    if not 1 <= args.samples <= MAX_SAMPLES:
        raise CodesignError(f"--samples {args.samples} is out of range: accepted 1 to {MAX_SAMPLES:,}")
    specs = [s.strip() for s in args.backends.split(",") if s.strip()]
    if not specs or len(specs) > MAX_BACKENDS:
        raise CodesignError(f"--backends: give 1 to {MAX_BACKENDS} backend specs, comma-separated")
    twice = sorted({s for s in specs if specs.count(s) > 1})
    if twice:
        raise CodesignError(f"--backends: {twice[0]} given twice")
    space = get_space(args.space)
    backends = [get_backend(spec) for spec in specs]  # a bad spec fails before any sampling
    rng = np.random.default_rng(args.seed)
    archs, seen, tries = [], set(), 0
    while len(archs) < args.samples:
        a = space.sample(rng)
        tries += 1
        key = repr(sorted(a.items()))
        if key not in seen:
            seen.add(key)
            archs.append(a)
        elif tries > 50 * args.samples:
            raise CodesignError(f"{args.space}: fewer than {args.samples} distinct architectures found in "
                                f"{tries:,} samples")
    rows = []
    for spec, backend in zip(specs, backends):
        t0 = time.perf_counter()
        first = backend.measure(archs[0], space=args.space)
        t_first = time.perf_counter() - t0
        ms = [first.ms] + [backend.measure(a, space=args.space).ms for a in archs[1:]]
        total = time.perf_counter() - t0
        rows.append({"backend": spec, "archs": len(archs), "seconds": total, "first_arch_s": t_first,
                     "archs_per_s": len(archs) / total, "mean_latency_ms": float(np.mean(ms))})
    return {"space": args.space, "samples": args.samples, "seed": args.seed, "backends": rows,
            "cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}


def format_text(r: dict) -> str:
    lines = [f"{r['samples']} sub-networks of {r['space']} (seed {r['seed']})",
             f"{'backend':<28} {'archs/s':>9} {'first arch s':>13} {'total s':>9} {'mean latency ms':>16}"]
    for b in r["backends"]:
        lines.append(f"{b['backend']:<28} {b['archs_per_s']:>9.2f} {b['first_arch_s']:>13.3f} {b['seconds']:>9.2f} "
                     f"{b['mean_latency_ms']:>16.3f}")
    return "\n".join(lines)
