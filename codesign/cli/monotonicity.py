"""``codesign monotonicity``: latency rank correlation (SRCC) between latency sources, and proxy
adaptation (AdaProxy) from a few target measurements.

From a latency table (``--data CSV``, gzipped or not):

- ``--proxy P --target T [--adapt]``: SRCC of the proxy column against the target column;
  with ``--adapt``, AdaProxy fitted on at most ``--samples`` target rows (added ``--step`` at
  a time from ``--start`` until the validation SRCC reaches ``--threshold``; the prediction
  averages ``--bags`` fits on subsamples of them), and the SRCC before and after on every row
  not used for fitting;
- ``--proxy P --target T --pareto ACC``: Algorithm 1 of "One Proxy Device Is Enough" on the
  table's rows, scored against the exact Pareto front of (``ACC``, target latency);
- neither: the SRCC matrix of ``--columns`` (default: every numeric column).

``--backends SPEC,...`` with ``--data`` measures the table's NAS-Bench-201 cells (``--rows N``
random ones) on latency backends and adds a column per spec, usable as any other column.

From a search space (``--space S --backends SPEC,SPEC,...``): ``--samples`` sampled
architectures measured on every backend, and their SRCC matrix.
"""
from __future__ import annotations

import numpy as np

from models.errors import CodesignError

from ._common import emit_json, float_in, int_in, seed_arg

MAX_SAMPLES = 100_000        # target samples (--data) or architectures (--space, see below)
MAX_SPACE_SAMPLES = 10_000   # architectures sampled from a space and measured on every backend
MAX_REPEATS = 1_000
MAX_FOLDS = 100
MAX_BAGS = 1_000
MAX_CONFIDENCE_Z = 10.0
MAX_SLACK = 100.0            # a latency factor
MAX_BACKENDS = 32            # latency backends compared (--space) or added as columns (--data)
MAX_ACCURACY = 100.0         # the --pareto column: a fraction or a percentage


def _num(x):
    return None if x is None or not np.isfinite(x) else float(x)


def _matrix_json(M: np.ndarray) -> list:
    return [[_num(v) for v in row] for row in M]


def _encodings(args) -> list[str]:
    from codesign.validation.monotonicity import ENCODINGS

    names = [e.strip() for e in args.encoding.split(",") if e.strip()]
    bad = [e for e in names if e not in ENCODINGS]
    if bad or not names:
        raise CodesignError(f"--encoding: unknown {', '.join(bad) or 'empty list'} "
                            f"(give one or more of {', '.join(ENCODINGS)}, comma-separated)")
    _no_repeats(names, "--encoding")
    return names


def _no_repeats(items: list, what: str) -> None:
    twice = [x for i, x in enumerate(items) if x in items[:i]]
    if twice:
        raise CodesignError(f"{what}: {twice[0]} given twice")


def _features(table, args) -> dict:
    """The proxy's features over each encoding asked for: ``{encoding: W}``."""
    from codesign.validation.adaproxy import proxy_features

    p = table.column(args.proxy)
    return {e: proxy_features(table.encoding(e), p, residual=not args.no_residual)[0] for e in _encodings(args)}


def _features_label(args) -> str:
    return ",".join(_encodings(args)) + ("" if args.no_residual else " +residual")


def _check_samples(n_rows: int, args) -> None:
    if args.samples < 3:
        raise CodesignError(f"--samples must be at least 3, got {args.samples}")
    if args.samples >= n_rows:
        raise CodesignError(f"--samples {args.samples} leaves no rows to evaluate on ({n_rows} rows)")


def _pair_once(table, W, args, seed: int) -> dict:
    from codesign.validation.adaproxy import adapt_incremental
    from codesign.validation.monotonicity import srcc, srcc_lower_bound

    p, y = table.column(args.proxy, latency=True), table.column(args.target, latency=True)
    if not args.adapt:
        chk = np.random.default_rng(seed).permutation(len(y))[: args.samples]
        s_chk = srcc(p[chk], y[chk])
        return {"srcc_before": _num(srcc(p, y)), "srcc_after": None, "samples_used": 0, "lambda": None,
                "rows_evaluated": len(y), "srcc_check": _num(s_chk), "check_samples": len(chk),
                "check_passes": srcc_lower_bound(s_chk, len(chk), args.confidence_z) >= args.threshold}
    r = adapt_incremental(W, y, proxy=p, threshold=args.threshold, start=min(args.start, args.samples),
                          step=args.step, max_samples=args.samples, seed=seed, confidence_z=args.confidence_z,
                          folds=args.folds, bags=args.bags)
    d = r.to_dict()
    return {k: d[k] for k in ("srcc_before", "srcc_after", "samples_used", "lambda", "rows_evaluated",
                              "reached_threshold", "val_srcc", "alpha", "features")}


def _pair(table, args) -> dict:
    if args.proxy == args.target:
        raise CodesignError("--proxy and --target name the same column")
    table.column(args.proxy, latency=True), table.column(args.target, latency=True)
    _check_samples(len(table), args)
    W = _features(table, args) if args.adapt else None
    seeds = [args.seed + i for i in range(args.repeats)]
    runs = [_pair_once(table, W, args, s) for s in seeds]
    head = {"proxy": args.proxy, "target": args.target, "adapt": bool(args.adapt), "threshold": args.threshold,
            "max_samples": args.samples}
    if args.adapt:
        head.update(encodings=_features_label(args), bags=args.bags)
    if len(runs) == 1:
        return {**head, **runs[0], "seed": args.seed}
    out = dict(head)
    for k, v in runs[0].items():
        vals = [r[k] for r in runs]
        if isinstance(v, bool):
            out[k] = sum(vals)  # how many runs
        elif isinstance(v, str):  # how many runs chose each
            out[k] = {x: vals.count(x) for x in dict.fromkeys(vals)}
        elif all(x is not None for x in vals):
            out[k] = float(np.mean(vals))
        else:
            out[k] = None
    if args.adapt:
        after = [r["srcc_after"] for r in runs]
        out["srcc_after_min"] = None if None in after else min(after)
    out.update(seeds=seeds, runs=runs)
    return out


def _pareto(table, args) -> dict:
    from codesign.validation.adaproxy import algorithm1, hypervolume, pareto_front

    acc = table.column(args.pareto)
    if acc.min() < 0 or acc.max() > MAX_ACCURACY:
        i = int(np.flatnonzero((acc < 0) | (acc > MAX_ACCURACY))[0])
        raise CodesignError(f"{table.path}: {table.where(i)}, column {args.pareto!r}: accuracy {acc[i]:g} "
                            f"is out of range: accepted 0 to {MAX_ACCURACY:g} (a fraction or a percentage)")
    y, p = table.column(args.target, latency=True), table.column(args.proxy, latency=True)
    _check_samples(len(table), args)
    W = _features(table, args)
    truth = pareto_front(acc, y)
    true_pts = set(zip(acc[truth].tolist(), y[truth].tolist()))
    ref_a, ref_t = float(acc.min()), float(y.max())
    hv_true = hypervolume(acc[truth], y[truth], ref_a, ref_t)
    runs = []
    for seed in (args.seed + i for i in range(args.repeats)):
        r = algorithm1(acc, W, lambda i: y[i], proxy=p, threshold=args.threshold,
                       check_samples=min(args.start, args.samples), step=args.step, max_samples=args.samples,
                       slack=args.slack, seed=seed, confidence_z=args.confidence_z,
                       with_proxy_front=args.with_proxy_front, folds=args.folds, bags=args.bags)
        pts = set(zip(acc[r.pareto].tolist(), y[r.pareto].tolist()))
        runs.append({"seed": seed, "srcc_check": _num(r.srcc_check), "adapted": r.adapted,
                     "samples_used": r.samples_used, "val_srcc": _num(r.val_srcc), "lambda": r.lambda_,
                     "features": r.features,
                     "candidates_measured": r.candidates_measured, "target_measurements": r.target_measurements,
                     "pareto_size": len(r.pareto),
                     "true_members_found": int(np.isin(r.pareto, truth).sum()),
                     "true_points_found": len(pts & true_pts),
                     "hypervolume_ratio": hypervolume(acc[r.pareto], y[r.pareto], ref_a, ref_t) / hv_true
                     if hv_true > 0 else None,
                     "pareto": r.pareto.tolist()})
    out = {"proxy": args.proxy, "target": args.target, "accuracy": args.pareto, "candidates": len(table),
           "threshold": args.threshold, "max_samples": args.samples, "slack": args.slack,
           "with_proxy_front": bool(args.with_proxy_front),
           "encodings": _features_label(args), "bags": args.bags,
           "true_front_members": len(truth), "true_front_points": len(true_pts)}
    if len(runs) == 1:
        return {**out, **runs[0]}
    for k in ("target_measurements", "candidates_measured", "samples_used", "true_members_found",
              "true_points_found", "hypervolume_ratio"):
        vals = [r[k] for r in runs]
        out[k] = None if None in vals else float(np.mean(vals))
    out["adapted"] = sum(r["adapted"] for r in runs)
    out["runs"] = runs
    return out


def _matrix(table, args) -> dict:
    from codesign.validation.monotonicity import heatmap_png, srcc_matrix

    if not args.columns and table.damaged:  # a numeric column with a bad cell is not left out silently
        raise CodesignError(f"{table.path}: {table.rejected[table.damaged[0]]} (choose the columns with --columns "
                            "to leave it out)")
    names = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else list(table.columns)
    if len(names) < 2:
        why = "".join(f" ({w})" for w in list(table.rejected.values())[:1])
        raise CodesignError(f"{table.path}: need at least two numeric columns for an SRCC matrix, "
                            f"found {len(names)}{why}")
    _no_repeats(names, "--columns")
    if len(table) < 2:
        raise CodesignError(f"{table.path}: {len(table)} data row; an SRCC needs at least 2")
    names, M = srcc_matrix({c: table.column(c) for c in names})
    if args.heatmap:
        heatmap_png(names, M, args.heatmap, f"SRCC, {len(table)} rows")
    return {"columns": names, "srcc": _matrix_json(M), "rows": len(table)}


def _space(args) -> dict:
    from codesign.validation.monotonicity import heatmap_png, measure_backends, srcc_matrix
    from models.spaces import get_space

    space = get_space(args.space).name
    specs = [s.strip() for s in (args.backends or "").split(",") if s.strip()]
    if len(specs) < 2:
        raise CodesignError("--backends needs at least two latency backend specs, comma-separated")
    _no_repeats(specs, "--backends")
    if len(specs) > MAX_BACKENDS:
        raise CodesignError(f"--backends: {len(specs)} specs, at most {MAX_BACKENDS}")
    if args.samples > MAX_SPACE_SAMPLES:
        raise CodesignError(f"--samples {args.samples} with --space: at most {MAX_SPACE_SAMPLES:,} architectures")
    cols = measure_backends(space, specs, args.samples, args.seed, progress=not args.json)
    names, M = srcc_matrix(cols)
    if args.heatmap:
        heatmap_png(names, M, args.heatmap, f"SRCC of latency, {args.samples} {space} samples")
    return {"space": space, "backends": names, "srcc": _matrix_json(M), "samples": args.samples,
            "seed": args.seed, "mean_ms": {s: float(np.mean(v)) for s, v in cols.items()}}


def _print(d: dict) -> None:
    def f(x):
        return "-" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)

    if "srcc" in d:
        names = d.get("columns") or d.get("backends")
        w = max(len(n) for n in names)
        print(f"{'':<{w}}  " + "  ".join(f"{i:>6d}" for i in range(len(names))))
        for i, (n, row) in enumerate(zip(names, d["srcc"])):
            print(f"{n:<{w}}  " + "  ".join(f"{'-' if v is None else f'{v:6.3f}':>6}" for v in row) + f"   [{i}]")
        return
    for k, v in d.items():
        if k not in ("runs", "pareto"):
            print(f"{k}: {f(v)}")


def _run(args) -> int:
    from codesign.validation.monotonicity import load_latency_csv

    if (args.data is None) == (args.space is None):
        raise CodesignError("give either --data CSV (a latency table) or --space NAME --backends SPEC,...")
    if args.heatmap:
        _check_heatmap_path(args.heatmap)
    if args.space is not None:
        if args.proxy or args.target or args.adapt or args.pareto:
            raise CodesignError("--proxy/--target/--adapt/--pareto go with --data, not --space")
        if args.rows is not None:
            raise CodesignError("--rows goes with --data and --backends")
        out = _space(args)
    else:
        if (args.proxy is None) != (args.target is None):
            raise CodesignError("give both --proxy COLUMN and --target COLUMN")
        if args.heatmap and args.proxy is not None:
            raise CodesignError("--heatmap draws the SRCC matrix; it does not go with --proxy/--target")
        table = load_latency_csv(args.data)
        if args.backends:
            from codesign.validation.monotonicity import add_backend_columns

            specs = [s.strip() for s in args.backends.split(",") if s.strip()]
            _no_repeats(specs, "--backends")
            if len(specs) > MAX_BACKENDS:
                raise CodesignError(f"--backends: {len(specs)} specs, at most {MAX_BACKENDS}")
            table = add_backend_columns(table, specs, rows=args.rows, seed=args.seed, progress=not args.json)
        elif args.rows is not None:
            raise CodesignError("--rows goes with --data and --backends")
        if args.columns and args.proxy is not None:
            raise CodesignError("--columns chooses the SRCC matrix's columns; it does not go with --proxy/--target")
        if args.proxy is None:
            if args.adapt or args.pareto:
                raise CodesignError("--adapt and --pareto need --proxy and --target")
            out = _matrix(table, args)
        elif args.pareto:
            out = _pareto(table, args)
        else:
            out = _pair(table, args)
    if args.json:
        emit_json(out)
    else:
        _print(out)
    return 0


def _check_heatmap_path(path) -> None:
    """Before any work: the heatmap's folder exists and is writable."""
    import os
    from pathlib import Path

    parent = Path(path).expanduser().resolve().parent
    if Path(path).is_dir():
        raise CodesignError(f"--heatmap {path!r}: is a folder; give a .png file name")
    if not parent.is_dir():
        raise CodesignError(f"--heatmap {path!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise CodesignError(f"--heatmap {path!r}: folder {str(parent)!r} is not writable")


def register(sub) -> None:
    from codesign.validation.adaproxy import BAG_FRACTION, BAGS
    from codesign.validation.monotonicity import DEFAULT_ENCODINGS, ENCODINGS, MAX_TABLE_ROWS

    p = sub.add_parser("monotonicity", help="latency rank correlation between sources; AdaProxy adaptation",
                       description="Latency rank correlation (SRCC) between latency sources, and proxy "
                                   "adaptation (AdaProxy) from a few target measurements.")
    src = p.add_argument_group("sources")
    src.add_argument("--data", metavar="CSV", help="latency table (.csv or .csv.gz) with one column per source")
    src.add_argument("--space", metavar="NAME", help="search space to sample (e.g. ofa-mbv3, nasbench201)")
    src.add_argument("--backends", metavar="SPEC,...",
                     help="latency backends to compare (--space), or to add as columns (--data: the table's "
                          "NAS-Bench-201 cells measured on each, columns named by the spec)")
    src.add_argument("--rows", type=int_in(2, MAX_TABLE_ROWS), metavar="N",
                     help="with --data --backends: measure N random rows only")
    p.add_argument("--proxy", metavar="COL", help="proxy latency column")
    p.add_argument("--target", metavar="COL", help="target latency column")
    p.add_argument("--columns", metavar="COL,...", help="columns of the SRCC matrix (default: all numeric)")
    p.add_argument("--adapt", action="store_true", help="adapt the proxy to the target with AdaProxy")
    p.add_argument("--pareto", metavar="ACC_COL", help="run Algorithm 1 with this accuracy column")
    p.add_argument("--samples", type=int_in(3, MAX_SAMPLES), default=50, metavar="N",
                   help="target samples at most (--data), architectures (--space); default 50")
    p.add_argument("--start", type=int_in(3, MAX_SAMPLES), default=30, metavar="K",
                   help="first adaptation / check samples (default 30)")
    p.add_argument("--step", type=int_in(1, MAX_SAMPLES), default=10, metavar="K",
                   help="samples added per step (default 10)")
    p.add_argument("--threshold", type=float_in(-1.0, 1.0), default=0.9, help="SRCC to reach (default 0.9)")
    p.add_argument("--confidence-z", type=float_in(0.0, MAX_CONFIDENCE_Z), default=1.645, metavar="Z",
                   help="the threshold test uses the validation SRCC minus Z standard errors (default 1.645; 0: raw)")
    p.add_argument("--folds", type=int_in(1, MAX_FOLDS), default=5, metavar="K",
                   help="validation for lambda: K-fold (default 5); 1 = one 70/30 split")
    p.add_argument("--encoding", default=",".join(DEFAULT_ENCODINGS), metavar="ENC[,ENC...]",
                   help="architecture encoding(s) of the proxy's linear model: " + ", ".join(ENCODINGS) +
                        "; with several, each is adapted and the best validation SRCC wins "
                        f"(default {','.join(DEFAULT_ENCODINGS)})")
    p.add_argument("--bags", type=int_in(0, MAX_BAGS), default=BAGS, metavar="B",
                   help=f"predict with the average of B fits on random {round(100 * BAG_FRACTION)}%% subsamples of the "
                        "target samples "
                        f"(default {BAGS}; 0: one fit on all of them, as in the paper)")
    p.add_argument("--no-residual", action="store_true",
                   help="features w o x only (without the proxy's residual column)")
    p.add_argument("--slack", type=float_in(0.0, MAX_SLACK), default=0.0,
                   help="Algorithm 1: keep candidates within this latency "
                   "factor of the predicted front (default 0)")
    p.add_argument("--with-proxy-front", action="store_true",
                   help="Algorithm 1: when adapted, measure the proxy's own Pareto set too")
    p.add_argument("--seed", type=seed_arg(), default=0)
    p.add_argument("--repeats", type=int_in(1, MAX_REPEATS), default=1, metavar="R",
                   help="run seeds SEED..SEED+R-1 and average")
    p.add_argument("--heatmap", metavar="PNG", help="write the SRCC matrix as a heatmap")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
