"""Mapping matters: for a fixed layer on fixed hardware, how far apart are the valid mappings
(best / median / worst EDP), and how close does each mapping optimizer get to the best?

The distribution is exact (every capacity-valid mapping of the mapping space evaluated) where
the space is small enough, otherwise a large uniform sample of valid mappings; "best" is the
exhaustive optimum where it exists, otherwise the best EDP any method found.
"""
from __future__ import annotations

import math
import time

import numpy as np

from accelerators import load_accelerator
from accelerators.kernel import COL, evaluate_batch, hw_arrays, set_threads
from mappings import MappingSpace, optimize
from models.zoo import get_network

from ._common import Report, command_line, fmt, parse_args, plt

NAME = "mapping_matters"
LAYERS = [("resnet50", "layer1.0.conv2", "3x3 conv 64->64 @56"),
          ("resnet50", "layer3.0.conv1", "1x1 conv 512->256 @28"),
          ("mobilenet_v2", "features.4.conv.1.0", "depthwise 3x3 144 @28/s2"),
          ("mobilenet_v2", "features.14.conv.2", "1x1 conv 960->160 @7"),
          ("vgg16", "features.10", "3x3 conv 128->256 @56"),
          ("resnet50", "fc", "fc 2048->1000")]
QUICK_LAYERS = [LAYERS[2], LAYERS[5]]
ACCELERATORS = ["eyeriss", "nvdla-256", "shidiannao"]
QUICK_ACCELERATORS = ["nvdla-256", "shidiannao"]
OPTIMIZERS = ["heuristic", "random", "evolution", "auto"]


def edp_distribution(space: MappingSpace, hw, exhaustive_limit: int, sample: int, rng) -> tuple[np.ndarray, str]:
    """EDPs of every valid mapping when the space (before capacity) has at most
    ``exhaustive_limit`` mappings, else of ``sample`` uniformly sampled valid mappings."""
    layer = space.layer
    out = []
    if space.size() <= exhaustive_limit:
        for idx in space.enumerate_splits():
            r = evaluate_batch(layer, hw, *space.arrays_all_orders(idx))
            out.append(r[r[:, COL["reason"]] == 0, COL["edp"]])
        return np.concatenate(out), "exhaustive"
    left = sample
    while left > 0:
        n = min(left, 1 << 16)
        r = evaluate_batch(layer, hw, *space.sample(n, rng))
        out.append(r[r[:, COL["reason"]] == 0, COL["edp"]])
        left -= n
    return np.concatenate(out), "sample"


def run_case(net: str, lname: str, label: str, acc_name: str, args) -> dict:
    layer = next(l for l in get_network(net).layers if l.name == lname)
    acc = load_accelerator(acc_name)
    space = MappingSpace(layer, acc)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    edps, how = edp_distribution(space, hw_arrays(acc), 1_000_000 if args.quick else 30_000_000,
                                 50_000 if args.quick else 400_000, rng)
    dist_s = time.perf_counter() - t0
    opts = {}
    for o in OPTIMIZERS:
        res = optimize(layer, acc, optimizer=o, seed=args.seed)
        opts[o] = {"edp": res.cost.edp, "evaluated": res.evaluated, "seconds": res.seconds,
                   "utilization": res.cost.utilization, "bound": res.cost.bound}
    best = float(edps.min()) if how == "exhaustive" else min(float(edps.min()), min(v["edp"] for v in opts.values()))
    for v in opts.values():
        v["ratio_to_best"] = v["edp"] / best
    # percentile of each optimizer's result among the valid mappings
    srt = np.sort(edps)
    for v in opts.values():
        v["better_than_fraction"] = float(1.0 - np.searchsorted(srt, v["edp"], side="left") / len(srt))
    return {"network": net, "layer": lname, "label": label, "accelerator": acc_name, "macs": layer.macs,
            "distribution": how, "valid_mappings": int(len(edps)) * (1 if how == "exhaustive" else 0) or None,
            "sampled": int(len(edps)) if how == "sample" else None, "space_size": space.size(),
            "best_edp": best, "median_edp": float(np.median(edps)), "worst_edp": float(edps.max()),
            "p10_edp": float(np.quantile(edps, 0.1)), "p90_edp": float(np.quantile(edps, 0.9)),
            "distribution_seconds": dist_s, "optimizers": opts,
            "hist": np.histogram(np.log10(edps / best), bins=60)}


def main(argv=None) -> int:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    set_threads(1)
    layers = QUICK_LAYERS if args.quick else LAYERS
    accs = QUICK_ACCELERATORS if args.quick else ACCELERATORS
    cases = [run_case(n, l, lab, a, args) for n, l, lab in layers for a in accs]
    rep = Report(NAME, "Mapping matters: EDP spread across valid mappings, and the mapping optimizers", args.out,
                 args.quick)
    rep.p("For a fixed layer on a fixed accelerator every capacity-valid mapping (tiling at the register file, "
          "global buffer and DRAM; spatial unrolling on the array; the loop orders that matter) is a legal "
          "schedule. Distributions are exact where the mapping space is small enough to enumerate, else a uniform "
          "sample of valid mappings (column 'how'). Optimizers: the project's `heuristic`, `random` (20,000 "
          "samples), `evolution` (4,000 evaluations) and `auto` (default), each with its default budget and seed "
          f"{args.seed}.")
    spread = [c["worst_edp"] / c["best_edp"] for c in cases]
    med = [c["median_edp"] / c["best_edp"] for c in cases]
    i_max = int(np.argmax(spread))
    rep.h2("Headline")
    rep.p(f"Across {len(cases)} (layer, accelerator) pairs the worst valid mapping costs "
          f"{fmt(min(spread), 3)}x to {fmt(max(spread), 3)}x the EDP of the best (largest: "
          f"{cases[i_max]['label']} on {cases[i_max]['accelerator']}), and the median mapping "
          f"{fmt(min(med), 3)}x to {fmt(max(med), 3)}x. " + " ".join(
              f"`{o}` finds the best (within 0.1 %) in {sum(c['optimizers'][o]['ratio_to_best'] <= 1.001 for c in cases)}"
              f"/{len(cases)} cases, worst {max(c['optimizers'][o]['ratio_to_best'] for c in cases):.3f}x."
              for o in OPTIMIZERS))
    rep.h2("EDP spread across valid mappings")
    rep.table(["layer", "accelerator", "how", "valid mappings", "best EDP", "median / best", "worst / best",
               "p90 / best"],
              [[c["label"], c["accelerator"], c["distribution"],
                fmt(c["valid_mappings"]) if c["valid_mappings"] else f"{fmt(c['sampled'])} sampled",
                fmt(c["best_edp"]), fmt(c["median_edp"] / c["best_edp"], 3) + "x",
                fmt(c["worst_edp"] / c["best_edp"], 3) + "x", fmt(c["p90_edp"] / c["best_edp"], 3) + "x"]
               for c in cases])
    rep.h2("How close each optimizer gets to the best")
    rep.table(["layer", "accelerator"] + [f"{o} EDP/best" for o in OPTIMIZERS] + [f"{o} s" for o in OPTIMIZERS],
              [[c["label"], c["accelerator"]] + [f"{c['optimizers'][o]['ratio_to_best']:.4f}" for o in OPTIMIZERS]
               + [fmt(c["optimizers"][o]["seconds"], 2) for o in OPTIMIZERS] for c in cases])
    geo = {o: math.exp(np.mean([math.log(c["optimizers"][o]["ratio_to_best"]) for c in cases])) for o in OPTIMIZERS}
    rep.p("Geomean EDP / best over the cases: " + ", ".join(f"{o} {geo[o]:.4f}x" for o in OPTIMIZERS) + ".")

    p = plt()
    ncol = len(accs)
    nrow = len(layers)
    fig, axes = p.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.3 * nrow), squeeze=False)
    for k, c in enumerate(cases):
        ax = axes[k // ncol][k % ncol]
        counts, edges = c["hist"]
        ax.stairs(counts, edges, fill=True, color="0.75")
        for j, o in enumerate(OPTIMIZERS):
            ax.axvline(math.log10(c["optimizers"][o]["ratio_to_best"]), color=f"C{j}", lw=1.4,
                       ls=("-", "--", ":", "-.")[j], label=o)
        ax.axvline(math.log10(c["median_edp"] / c["best_edp"]), color="k", lw=0.8, label="median mapping")
        ax.set_title(f"{c['label']}\non {c['accelerator']} ({c['distribution']})", fontsize=8)
        ax.set_xlabel("log10(EDP / best)", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_yticks([])
    axes[0][0].legend(fontsize=6)
    rep.figure(fig, "edp_distributions.png", "Distribution of EDP over the valid mappings (grey; log10 of the "
                                              "ratio to the best) and where each optimizer lands (lines).")
    fig, ax = p.subplots(figsize=(max(6.4, 0.55 * len(cases) + 2), 4))
    xs = np.arange(len(cases))
    ax.bar(xs, [c["worst_edp"] / c["best_edp"] for c in cases], color="C3", alpha=0.5, label="worst valid mapping")
    ax.bar(xs, [c["median_edp"] / c["best_edp"] for c in cases], color="C0", alpha=0.8, label="median valid mapping")
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{c['label']}\n{c['accelerator']}" for c in cases], rotation=60, ha="right", fontsize=6)
    ax.set_ylabel("EDP / best mapping's EDP")
    ax.set_title("Mapping matters: same layer, same hardware")
    ax.legend(fontsize=8)
    rep.figure(fig, "spread.png", "Median and worst valid mapping, relative to the best, per (layer, accelerator).")
    rows = []
    for c in cases:
        r = {k: c[k] for k in ("network", "layer", "label", "accelerator", "macs", "distribution", "valid_mappings",
                               "sampled", "best_edp", "p10_edp", "median_edp", "p90_edp", "worst_edp")}
        for o in OPTIMIZERS:
            r[f"{o}_edp"] = c["optimizers"][o]["edp"]
            r[f"{o}_ratio"] = c["optimizers"][o]["ratio_to_best"]
            r[f"{o}_seconds"] = c["optimizers"][o]["seconds"]
        rows.append(r)
    rep.data("cases.csv", rows)
    rep.data("cases.json", [{k: v for k, v in c.items() if k != "hist"} for c in cases])
    rep.write(command_line(NAME, args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
