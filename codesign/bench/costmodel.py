"""``codesign bench costmodel``: batch-kernel throughput on random mappings of real layers."""
from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

NAME = "costmodel"
HELP = "cost-kernel evaluations per second on random mappings (one core, after JIT warm-up)"

MAX_MAPPINGS = 10_000_000        # about 1.5 kB of memory each (15 GB at the bound)
MAX_REPEATS = 100
MAX_EVALUATIONS = 200_000_000    # mappings x (repeats + 1): minutes, not hours, on one core
ZIGZAG_TIMEOUT_S = 3600          # the ZigZag run of --zigzag-python


def add_arguments(p) -> None:
    from codesign.cli._common import MAX_WORKERS, int_in, seed_arg

    p.add_argument("--accelerator", default="eyeriss")
    p.add_argument("--workload", default="resnet50")
    p.add_argument("--mappings", type=int_in(1, MAX_MAPPINGS), default=1_000_000,
                   help=f"batch size (default 1,000,000; at most {MAX_MAPPINGS:,})")
    p.add_argument("--repeats", type=int_in(1, MAX_REPEATS), default=5)
    p.add_argument("--threads", type=int_in(1, MAX_WORKERS), default=1)
    p.add_argument("--seed", type=seed_arg(), default=0)
    p.add_argument("--zigzag-python", metavar="PY", help="python of a ZigZag 3.9.1 environment: also time ZigZag's "
                                                        "cost model in this run (one peer layer on tpu_like)")


def zigzag_rate(python: str | None) -> dict:
    """ZigZag's cost-model evaluations per second: measured now with ``python`` (its own
    environment) on one peer layer, else the rate of the checked-in peer run."""
    import subprocess

    from codesign.validation.peers import zigzag as zz
    from models.errors import CodesignError

    if python:
        from codesign.validation.peers.layerset import peer_layers

        layer = next(l for l in peer_layers() if l.name == "r18.layer3.conv")
        try:
            lines = zz.run_runner(python, zz.make_job([layer], ["tpu_like"]), timeout=ZIGZAG_TIMEOUT_S)
        except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            raise CodesignError(f"--zigzag-python {python}: the ZigZag run failed ({e})") from None
        recs = [r for r in lines if "search" in r]
        ev = sum(r["search"]["evaluations"] for r in recs)
        sec = sum(r["search"]["eval_seconds"] for r in recs)
        if not recs or sec <= 0:
            raise CodesignError(f"--zigzag-python {python}: the ZigZag run reported no timed evaluations")
        return {"evals_per_s": ev / sec, "source": "measured in this run (r18.layer3.conv on tpu_like)"}
    tp = zz.load_data()["throughput"]
    return {"evals_per_s": tp["evaluations_per_second"],
            "source": "the checked-in ZigZag run (not this run; pass --zigzag-python to measure it here)"}


def _divisor_table(n: int) -> np.ndarray:
    return np.array([d for d in range(1, n + 1) if n % d == 0], dtype=np.int64)


def random_mappings(layer, acc, count: int, rng: np.random.Generator):
    """Structurally random mappings: random divisor splits of every bound over the array
    dimensions that may take it and the three temporal levels, random loop orders. Capacity is
    not considered, so part of the batch is (realistically) invalid."""
    from models.layer import DIMS

    T = np.ones((count, 3, 8), np.int64)
    S = np.ones((count, 3, 8), np.int64)
    for d, bound in enumerate(layer.bounds):
        rem = np.full(count, bound, np.int64)
        for a, ad in enumerate(acc.array):
            if DIMS[d] not in ad.loops:
                continue
            f = _pick_divisors(rem, rng, cap=ad.size)
            S[:, a, d] = f
            rem //= f
        for lvl in (0, 1):
            f = _pick_divisors(rem, rng)
            T[:, lvl, d] = f
            rem //= f
        T[:, 2, d] = rem
    O = np.argsort(rng.random((count, 3, 8)), axis=2).astype(np.int64)
    return T, S, O


def _pick_divisors(rem: np.ndarray, rng, cap: int | None = None) -> np.ndarray:
    out = np.ones_like(rem)
    for n in np.unique(rem):
        idx = np.nonzero(rem == n)[0]
        divs = _divisor_table(int(n))
        if cap is not None:
            divs = divs[divs <= cap]
        out[idx] = divs[rng.integers(0, len(divs), len(idx))]
    return out


def run(args) -> dict:
    from accelerators import load_accelerator
    from accelerators.kernel import NCOL, evaluate_batch, hw_arrays, set_threads
    from models.errors import CodesignError
    from models.importers import load_workload

    zpy = getattr(args, "zigzag_python", None)
    if zpy and not (os.path.isfile(zpy) and os.access(zpy, os.X_OK)):
        raise CodesignError(f"--zigzag-python {zpy}: not an executable file")
    if args.mappings * (args.repeats + 1) > MAX_EVALUATIONS:
        raise CodesignError(f"--mappings {args.mappings:,} x (--repeats {args.repeats} + 1) is more than "
                            f"{MAX_EVALUATIONS:,} evaluations; lower one of them")
    acc = load_accelerator(args.accelerator)
    net = load_workload(args.workload)
    convs = [l for l, _ in net.unique_shapes() if l.R > 1 or l.S > 1 or l.P > 1]
    if not convs:
        raise CodesignError(f"{net.name}: no convolution layer (R, S or P above 1) to benchmark on")
    rng = np.random.default_rng(args.seed)
    per = -(-args.mappings // len(convs))
    batches = [(l, *random_mappings(l, acc, per, rng)) for l in convs]
    hw = hw_arrays(acc)
    set_threads(args.threads)
    outs = [np.zeros((per, NCOL)) for _ in batches]
    t0 = time.perf_counter()
    for (l, T, S, O), out in zip(batches[:1], outs):
        evaluate_batch(l, hw, T[:16], S[:16], O[:16])
    jit_s = time.perf_counter() - t0
    times = []
    for _ in range(1 + args.repeats):  # the first pass also touches every output page
        t0 = time.perf_counter()
        for (l, T, S, O), out in zip(batches, outs):
            evaluate_batch(l, hw, T, S, O, out=out)
        times.append(time.perf_counter() - t0)
    times = times[1:]
    n = per * len(batches)
    valid = sum(int((o[:, 0] == 0).sum()) for o in outs)
    # the valid mappings alone (they take the full path through the kernel)
    vb = [(l, T[o[:, 0] == 0], S[o[:, 0] == 0], O[o[:, 0] == 0]) for (l, T, S, O), o in zip(batches, outs)]
    vtimes = []
    for _ in range(1 + args.repeats):
        t0 = time.perf_counter()
        for l, T, S, O in vb:
            evaluate_batch(l, hw, T, S, O)
        vtimes.append(time.perf_counter() - t0)
    vtimes = vtimes[1:]
    med = statistics.median(times)
    zz = zigzag_rate(getattr(args, "zigzag_python", None))
    return {
        "evals_per_s": n / med,
        "zigzag_evals_per_s": zz["evals_per_s"],
        "ratio_to_zigzag": n / med / zz["evals_per_s"],
        "zigzag_source": zz["source"],
        "evals_per_s_min_max": [n / max(times), n / min(times)],
        "valid_fraction": valid / n,
        "valid_evals_per_s": valid / statistics.median(vtimes) if valid else 0.0,
        "mappings": n,
        "layers": len(convs),
        "accelerator": acc.name,
        "workload": net.name,
        "cores": args.threads,
        "repeats": args.repeats,
        "jit_warmup_s": jit_s,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def format_text(r: dict) -> str:
    return (f"{r['evals_per_s'] / 1e6:.2f} M evaluations/s on {r['cores']} core(s) "
            f"({r['mappings']:,} random mappings of {r['layers']} {r['workload']} layers on "
            f"{r['accelerator']}; {100 * r['valid_fraction']:.1f} % valid; valid-only "
            f"{r['valid_evals_per_s'] / 1e6:.2f} M/s; JIT warm-up {r['jit_warmup_s']:.1f} s)\n"
            f"ZigZag's cost model: {r['zigzag_evals_per_s']:.0f} evaluations/s ({r['zigzag_source']}): "
            f"{r['ratio_to_zigzag']:,.0f}x")
