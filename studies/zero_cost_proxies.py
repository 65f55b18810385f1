"""Zero-cost proxies on NAS-Bench-201: how well does each training-free score of a randomly
initialised network rank cells by their measured CIFAR-100 accuracy, and at what cost?

A seeded random sample of cells (default 1,000 of the 15,625, drawn without replacement with
``numpy.random.default_rng(seed)``) is scored with every proxy of ``models.proxies`` (CPU, one
thread, random weights and Gaussian inputs from the same seed, no data) and compared with the
CIFAR-100 top-1 of the HW-NAS-Bench-360 table (``models.nb201_table``) by Spearman's rank
correlation (SRCC), with a 95 % bootstrap interval (1,000 resamples of the cells). A proxy
"beats #params" when the bootstrap interval of its SRCC minus that of ``params`` (paired, the
same resamples) lies above zero; the same paired interval against ``synflow`` is reported when
it is scored. The SRCC over the connected cells only (those with a path of
non-``none`` edges from the cell input to its output) leaves out the dead cells, which every
proxy puts at the bottom and which all sit at 1 % accuracy. Time per cell is the wall time of
each proxy on one cell (its own copy of the network), plus the time to build the network once.
"""
from __future__ import annotations

import numpy as np

from ._common import Report, command_line, fmt, parse_args, plt, spearman

NAME = "zero_cost_proxies"
CELLS, QUICK_CELLS = 1000, 24
CHUNK = 10
BOOTSTRAP = 1000
TOP_FRACTION = 0.1


def _extra(p) -> None:
    p.add_argument("--cells", type=int, default=None, help=f"cells to sample (default {CELLS}, quick {QUICK_CELLS})")
    p.add_argument("--proxies", default=None, help="comma-separated proxies (default: all)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="batch of every data-driven proxy (default: models.proxies.DEFAULT_BATCH)")


def _score_chunk(job):
    from models.proxies import score_cells

    cells, names, seed, batch = job
    t: dict = {}
    s = score_cells(cells, names, seed=seed, batch_size=batch, timings=t)
    return s, t


def score_sample(cells, names, seed: int, batch, workers: int):
    """Scores and per-cell seconds of ``cells`` (in order; the result does not depend on ``workers``)."""
    from tqdm import tqdm

    jobs = [(cells[i:i + CHUNK], names, seed, batch) for i in range(0, len(cells), CHUNK)]
    bar = tqdm(total=len(cells), desc="zero-cost proxies", unit="cell")
    parts = []
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            for (c, *_), r in zip(jobs, ex.map(_score_chunk, jobs)):
                parts.append(r)
                bar.update(len(c))
    else:
        for job in jobs:
            parts.append(_score_chunk(job))
            bar.update(len(job[0]))
    bar.close()
    scores = {n: np.concatenate([p[0][n] for p in parts]) for n in parts[0][0]}
    secs = {n: np.concatenate([p[1][n] for p in parts]) for n in parts[0][1]}
    return scores, secs


def bootstrap_srcc(S: np.ndarray, y: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """SRCC of every row of ``S`` with ``y`` on ``draws`` resamples of the columns: (draws, rows)."""
    from codesign.validation.monotonicity import srcc_rows

    rng = np.random.default_rng(seed)
    out = np.empty((draws, len(S)))
    for b in range(draws):
        i = rng.integers(0, len(y), len(y))
        out[b] = srcc_rows(S[:, i], y[i])
    return out


def top_overlap(score: np.ndarray, acc: np.ndarray, frac: float) -> float:
    """Share of the cells in the top ``frac`` by accuracy that the proxy also puts in its top ``frac``."""
    k = max(1, int(round(frac * len(acc))))
    return len(set(np.argsort(-score, kind="stable")[:k]) & set(np.argsort(-acc, kind="stable")[:k])) / k


def main(argv=None) -> int:
    args = parse_args(NAME, __doc__.splitlines()[0], argv, extra=_extra)
    from models.nb201_table import load_hw360
    from models.proxies import DEFAULT_BATCH, PROXIES, RANK_PROXIES, TORCH_PROXIES, parse_proxies
    from models.spaces.nasbench201 import arch_from_string, live_edges

    names = parse_proxies(args.proxies) if args.proxies else list(PROXIES)
    n = args.cells or (QUICK_CELLS if args.quick else CELLS)
    table = load_hw360()
    if not 2 <= n <= len(table):
        raise SystemExit(f"--cells must be from 2 to {len(table)}")
    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.choice(len(table), n, replace=False))
    cells = [table.arch_strs[i] for i in rows]
    acc = table.accuracy[rows]
    connected = np.array([any(live_edges(arch_from_string(c)["ops"])) for c in cells])
    scores, secs = score_sample(cells, names, args.seed, args.batch_size, max(1, args.workers))
    build = float(secs["build"].mean()) if "build" in secs else 0.0

    S = np.array([scores[p] for p in names])
    rho = {p: spearman(scores[p], acc) for p in names}
    rho_conn = {p: spearman(scores[p][connected], acc[connected]) for p in names} if connected.sum() > 2 else {}
    boot = bootstrap_srcc(S, acc, BOOTSTRAP if not args.quick else 200, args.seed)
    ci = {p: (float(np.nanpercentile(boot[:, k], 2.5)), float(np.nanpercentile(boot[:, k], 97.5)))
          for k, p in enumerate(names)}
    diff = {}
    if "params" in names:
        kp = names.index("params")
        for k, p in enumerate(names):
            d = boot[:, k] - boot[:, kp]
            diff[p] = (float(np.nanpercentile(d, 2.5)), float(np.nanpercentile(d, 97.5)))
    diff_syn = {}   # the same against synflow, the best proxy of the first study
    if "synflow" in names:
        ks = names.index("synflow")
        for k, p in enumerate(names):
            d = boot[:, k] - boot[:, ks]
            diff_syn[p] = (float(np.nanpercentile(d, 2.5)), float(np.nanpercentile(d, 97.5)))
    sec = {p: float(secs[p].mean()) for p in names}
    total = {p: sec[p] + (build if p in TORCH_PROXIES or p == "rank" else 0.0) for p in names}
    overlap = {p: top_overlap(scores[p], acc, TOP_FRACTION) for p in names}
    best = {p: float(acc[np.argmax(scores[p])]) for p in names}
    beats = [p for p in names if p != "params" and p in diff and diff[p][0] > 0]
    higher = [p for p in names if p != "params" and "params" in rho and rho[p] > rho["params"]]

    rep = Report(NAME, "Zero-cost proxies on NAS-Bench-201 (CIFAR-100)", args.out, args.quick)
    rep.p(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    batches = ", ".join(f"{p} {args.batch_size or DEFAULT_BATCH[p]}" for p in names if p in TORCH_PROXIES)
    rep.p(f"{n} cells (seed {args.seed}; {int(connected.sum())} connected, {int((~connected).sum())} dead), "
          f"accuracy {fmt(float(acc.min()), 3)}-{fmt(float(acc.max()), 3)}. Batch sizes: {batches}. "
          f"`rank` = mean rank of {', '.join(RANK_PROXIES)}. Building a network takes {fmt(build, 3)} s per cell.")
    rep.h2("Headline")
    order = sorted(names, key=lambda p: -rho[p])
    head = "SRCC with CIFAR-100 accuracy: " + ", ".join(f"{p} {fmt(rho[p], 3)}" for p in order) + "."
    if "params" in names:
        head += (f" Significantly above #params ({fmt(rho['params'], 3)}; 95 % bootstrap interval of the "
                 f"difference above 0): {', '.join(beats) if beats else 'none'}."
                 f" Higher point estimate than #params: {', '.join(higher) if higher else 'none'}.")
    rep.p(head)
    head_rows = []
    for p in order:
        head_rows.append([p, fmt(rho[p], 3), f"{fmt(ci[p][0], 3)} to {fmt(ci[p][1], 3)}",
                          fmt(rho_conn.get(p), 3),
                          (f"{fmt(diff[p][0], 3)} to {fmt(diff[p][1], 3)}" if p in diff and p != "params" else "-"),
                          *([f"{fmt(diff_syn[p][0], 3)} to {fmt(diff_syn[p][1], 3)}" if p != "synflow" else "-"]
                            if diff_syn else []),
                          fmt(overlap[p], 3), fmt(best[p], 4), fmt(sec[p], 3), fmt(total[p], 3)])
    rep.table(["proxy", "SRCC", "95 % interval", "SRCC, connected cells", "minus params (95 %)",
               *(["minus synflow (95 %)"] if diff_syn else []),
               f"top-{int(TOP_FRACTION * 100)} % overlap", "accuracy of its top cell", "s/cell",
               "s/cell incl. build"], head_rows)

    p_ = plt()
    cols = 5
    nrow = -(-len(names) // cols)
    fig, axes = p_.subplots(nrow, cols, figsize=(3.1 * cols, 2.8 * nrow), squeeze=False)
    from scipy.stats import rankdata
    for ax, p in zip(axes.flat, order):
        ax.scatter(rankdata(scores[p]) / n, 100 * acc, s=3, alpha=0.4, c=np.where(connected, "C0", "C3"))
        ax.set_title(f"{p}: SRCC {rho[p]:.3f}", fontsize=9)
        ax.set_xlabel("proxy rank (fraction)", fontsize=8)
        ax.set_ylabel("CIFAR-100 top-1 (%)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    rep.figure(fig, "proxy_vs_accuracy.png", "Measured CIFAR-100 accuracy against each proxy's rank among the "
                                             "sampled cells (red: dead cells).")
    fig, ax = p_.subplots(figsize=(7, 3.6))
    y = [rho[p] for p in order]
    err = np.array([[rho[p] - ci[p][0] for p in order], [ci[p][1] - rho[p] for p in order]])
    ax.bar(range(len(order)), y, yerr=err, color=["C1" if p == "params" else "C0" for p in order], capsize=3)
    if "params" in names:
        ax.axhline(rho["params"], color="C1", ls=":", lw=1)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(order, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("SRCC with CIFAR-100 accuracy")
    ax.set_title(f"{n} NAS-Bench-201 cells, 95 % bootstrap intervals")
    rep.figure(fig, "srcc.png", "Spearman correlation of each proxy with CIFAR-100 accuracy (orange: #params).")

    rep.data("scores.csv", [{"arch": c, "row": int(r), "accuracy": float(a), "connected": bool(k),
                             **{p: float(scores[p][i]) for p in names},
                             **{f"s_{p}": float(secs[p][i]) for p in names}}
                            for i, (c, r, a, k) in enumerate(zip(cells, rows, acc, connected))])
    rep.data("summary.json", {"cells": n, "seed": args.seed, "connected": int(connected.sum()),
                              "rank_proxies": list(RANK_PROXIES),
                              "batch_size": {p: args.batch_size or DEFAULT_BATCH[p]
                                             for p in names if p in TORCH_PROXIES},
                              "build_s_per_cell": build,
                              "proxies": {p: {"srcc": rho[p], "srcc_ci95": ci[p], "srcc_connected": rho_conn.get(p),
                                              "srcc_minus_params_ci95": diff.get(p),
                                              "srcc_minus_synflow_ci95": diff_syn.get(p), "top_overlap": overlap[p],
                                              "accuracy_of_top_cell": best[p], "s_per_cell": sec[p],
                                              "s_per_cell_with_build": total[p]} for p in names},
                              "beats_params": beats})
    extra = []
    if args.cells:
        extra.append(f"--cells {args.cells}")
    if args.proxies:
        extra.append(f"--proxies {args.proxies}")
    if args.batch_size:
        extra.append(f"--batch-size {args.batch_size}")
    if args.seed:
        extra.append(f"--seed {args.seed}")
    if args.workers > 1:
        extra.append(f"--workers {args.workers}")
    rep.write(command_line(NAME, args.quick, " ".join(extra)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
