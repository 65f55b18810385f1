"""Differentiable vs evolutionary sub-network search over OFA MobileNetV3 at Note10 latency targets.

For each latency target (Samsung Note10 lookup table, ms) and seed: the evolutionary search
(``subnet_evolution.evolve``, its default budget: population 100, 20 generations, the most
accurate sub-network within the target) and the differentiable search
(``codesign.search.differentiable``: softmax relaxation of kernel, expand ratio, depth and
resolution, the OFA MLP predictor as accuracy, ProxylessNAS expected latency from the per-slot
table, then a discrete local search), both scoring latency with the same per-slot table (equal,
to float rounding, to the ``lut:note10`` backend). Reported: accuracy of each at the target, wall
time of each, the time the differentiable search takes to reach the evolution's final accuracy
(its search run for as long as the evolution took, rounds of new restarts after the first), and
the ratio to the evolution's wall time; then both at equal wall time. Ablations: the gradient
phase without the local search, and the local search from random starts without gradients.
One thread everywhere (BLAS and torch); set-up (loading the predictor, building the table,
torch's first call) is outside the timed searches.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads: small batches, one core each

import statistics  # noqa: E402
import time  # noqa: E402

from ._common import Report, command_line, fmt, parse_args, plt  # noqa: E402

NAME = "differentiable_vs_evolution"
SPACE = "ofa-mbv3"
TARGETS_MS = (15.0, 25.0, 35.0, 50.0)
SEEDS = 10
TARGET_RATIO = 0.2  # the goal: reach the evolution's accuracy in <= 1/5 of its wall time
TOL = 1e-6  # accuracies of one arch from numpy and torch float32 MLPs differ by ~1e-7
QUICK = {"targets": (15.0, 35.0), "seeds": 1, "population": 24, "generations": 4}
# second cost source: per-slot latency of the analytical model on an accelerator preset (heuristic
# mapper), targets at these fractions of the way from its smallest to its largest sub-network
ACCELERATOR, ANALYTICAL_FRACTIONS, ANALYTICAL_SEEDS = "eyeriss", (0.15, 0.4), 5
QUICK_ANALYTICAL = {"fractions": (0.4,), "seeds": 1, "resolutions": (160,)}


def _limit_threads():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the environment variables above already did it
        return None
    return threadpool_limits(1)


def best_until(trajectory, t: float):
    """The best accuracy of a trajectory ``[(seconds, accuracy, evaluations)]`` at time ``t`` (None before the first)."""
    got = [a for s, a, _ in trajectory if s <= t]
    return max(got) if got else None


def run_one(space, predictor, table, target: float, seed: int, evo_cfg) -> dict:
    from codesign.search.differentiable import search_differentiable, search_evolution

    evo = search_evolution(space, predictor, table, target, seed=seed, cfg=evo_cfg)
    diff = search_differentiable(space, predictor, table, target, seed=seed)
    eq = search_differentiable(space, predictor, table, target, seed=seed, rounds=None, time_limit=evo.seconds)
    grad = search_differentiable(space, predictor, table, target, seed=seed, do_polish=False)
    local = search_differentiable(space, predictor, table, target, seed=seed, steps=0)
    local_eq = search_differentiable(space, predictor, table, target, seed=seed, steps=0, rounds=None,
                                     time_limit=evo.seconds)
    reach = eq.time_to_reach(evo.accuracy, TOL)
    return {"target_ms": target, "seed": seed,
            "evo_accuracy": evo.accuracy, "evo_latency_ms": evo.latency_ms, "evo_seconds": evo.seconds,
            "evo_evaluations": evo.evaluations,
            "diff_accuracy": diff.accuracy, "diff_latency_ms": diff.latency_ms, "diff_seconds": diff.seconds,
            "diff_evaluations": diff.evaluations,
            "evo_accuracy_at_diff_seconds": best_until(evo.trajectory, diff.seconds),
            "reach_seconds": reach, "reach_ratio": None if reach is None else reach / evo.seconds,
            "reach_evaluations": eq.evaluations_to_reach(evo.accuracy, TOL),
            "eq_accuracy": eq.accuracy, "eq_latency_ms": eq.latency_ms, "eq_seconds": eq.seconds,
            "eq_rounds": eq.info["rounds"], "eq_evaluations": eq.evaluations,
            "gap_at_equal_time": eq.accuracy - evo.accuracy,
            "grad_only_accuracy": grad.accuracy, "grad_only_seconds": grad.seconds,
            "local_only_accuracy": local.accuracy, "local_only_seconds": local.seconds,
            "local_eq_accuracy": local_eq.accuracy,
            "local_reach_seconds": local_eq.time_to_reach(evo.accuracy, TOL),
            "evo_arch": evo.arch, "diff_arch": diff.arch, "eq_arch": eq.arch,
            "evo_trajectory": evo.trajectory, "eq_trajectory": eq.trajectory}


def mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def main(argv=None) -> int:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    from codesign.search.differentiable import analytical_table, lut_table, search_differentiable, search_evolution
    from codesign.validation.latency import get_backend
    from codesign.search.subnet_evolution import EvolutionConfig
    from models.predictors import load_predictor
    from models.spaces import get_space

    limiter = _limit_threads()
    q = QUICK if args.quick else {"targets": TARGETS_MS, "seeds": SEEDS, "population": 100, "generations": 20}
    space, predictor = get_space(SPACE), load_predictor(SPACE)
    table = lut_table(get_backend("lut:note10"), space)
    low, high = table.min_latency()[0], table.max_latency()
    # warm-up: torch's first call and numpy's first predictions are not part of any search
    search_differentiable(space, predictor, table, 30.0, steps=3, restarts=2)
    search_evolution(space, predictor, table, 30.0, cfg=EvolutionConfig(population=8, generations=1))

    def compare(tab, targets, n_seeds):
        out = []
        for target in targets:
            for s in range(n_seeds):
                cfg = EvolutionConfig(population=q["population"], generations=q["generations"], seed=args.seed + s)
                out.append(run_one(space, predictor, tab, target, args.seed + s, cfg))
        return out

    rows = compare(table, q["targets"], q["seeds"])
    qa = QUICK_ANALYTICAL if args.quick else {"fractions": ANALYTICAL_FRACTIONS, "seeds": ANALYTICAL_SEEDS,
                                              "resolutions": table.resolutions}
    t_build = time.perf_counter()
    atab = analytical_table(ACCELERATOR, space, "latency", resolutions=qa["resolutions"])
    t_build = time.perf_counter() - t_build
    a_low, a_high = atab.min_latency()[0], atab.max_latency()
    a_targets = [round(a_low + f * (a_high - a_low), 1) for f in qa["fractions"]]
    arows = compare(atab, a_targets, qa["seeds"])
    if limiter is not None:
        limiter.unregister()

    rep = Report(NAME, "Differentiable vs evolutionary sub-network search (OFA MobileNetV3, Note10 latency)",
                 args.out, args.quick)
    rep.p(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    rep.p(f"Note10 latency of the space: {fmt(low, 4)} ms (smallest sub-network) to {fmt(high, 4)} ms (largest). "
          f"Evolution: population {q['population']}, {q['generations']} generations; differentiable: 16 restarts x "
          f"60 Adam steps, then the local search; {q['seeds']} seed(s) per target.")
    rep.h2("Headline")
    rep.p(headline(rows))
    rep.h2("Per latency target (mean over seeds)")
    target_table(rep, rows)
    rep.p("`evo top-1 at diff s`: the evolution's best within the target when the differentiable search (default "
          "budget) finished (`-`: no generation done yet; mean over the seeds that had one). `reach s`: seconds "
          "until the differentiable search's best within the target first matched the evolution's final accuracy "
          "(`reach / evo s`: that over the evolution's wall time; the goal is <= 0.2; `reach evals`: the archs the "
          "differentiable search had scored exactly by then, against all the evolution scored). `diff top-1 at evo s`: the "
          "differentiable search given the evolution's wall time.")
    rep.h2("Ablations (mean top-1 over seeds)")
    ablation_table(rep, rows)
    rep.p("Gradient only: the best discrete arch the gradient phase met, without the final local search. Local "
          "search only: no gradient steps, the same local search from the arg-max of random logits (16 random "
          "archs), once (default) or in rounds of new random starts for the evolution's wall time.")
    rep.h2(f"Second cost source: analytical latency on {ACCELERATOR}")
    rep.p(f"Per-slot latency from the analytical cost model (heuristic mapper, layer by layer; built once in "
          f"{fmt(t_build, 3)} s, not counted below) over resolutions {', '.join(map(str, atab.resolutions))}: "
          f"{fmt(a_low, 4)} to {fmt(a_high, 4)} ms. Targets at "
          f"{', '.join(f'{f:g}' for f in qa['fractions'])} of the way up that range; {qa['seeds']} seed(s).")
    rep.p(headline(arows))
    target_table(rep, arows)
    rep.h2("Every run (Note10)")
    rep.table(["target", "seed", "evo top-1", "evo ms", "evo s", "evo evals", "diff top-1", "diff ms", "diff s",
               "diff evals", "reach s", "ratio", "diff top-1 at evo s"],
              [[fmt(r["target_ms"], 3), str(r["seed"]), fmt(r["evo_accuracy"], 4), fmt(r["evo_latency_ms"], 4),
                fmt(r["evo_seconds"], 3), str(r["evo_evaluations"]), fmt(r["diff_accuracy"], 4),
                fmt(r["diff_latency_ms"], 4), fmt(r["diff_seconds"], 3), str(r["diff_evaluations"]),
                fmt(r["reach_seconds"], 3) if r["reach_seconds"] is not None else "not reached",
                fmt(r["reach_ratio"], 3) if r["reach_ratio"] is not None else "-", fmt(r["eq_accuracy"], 4)]
               for r in rows])

    p = plt()
    fig, axes = p.subplots(1, len(q["targets"]), figsize=(3.3 * len(q["targets"]), 3.2), squeeze=False)
    for ax, t in zip(axes[0], q["targets"]):
        r = per(rows, t)[0]
        for key, label, color in (("evo_trajectory", "evolution", "C0"), ("eq_trajectory", "differentiable", "C3")):
            tr = r[key]
            xs = [x[0] for x in tr] + [r["evo_seconds"]]
            ys = [x[1] for x in tr] + [tr[-1][1]]
            ax.step(xs, ys, where="post", color=color, label=label)
        ax.axvline(TARGET_RATIO * r["evo_seconds"], color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_title(f"{fmt(t, 3)} ms (seed {r['seed']})", fontsize=9)
        ax.set_xlabel("wall seconds")
        lo = min(x[1] for x in r["evo_trajectory"] + r["eq_trajectory"])
        ax.set_ylim(max(lo, r["evo_accuracy"] - 0.03), None)
    axes[0][0].set_ylabel("best predicted top-1 within the target")
    axes[0][0].legend(fontsize=7)
    rep.figure(fig, "trajectories.png", "Best predicted top-1 within the Note10 latency target over wall time: "
                                        "evolution (default budget) and the differentiable search given the same "
                                        "time; dotted: 1/5 of the evolution's wall time.")

    fig, ax = p.subplots(figsize=(6.4, 4.2))
    for prefix, label, color in (("evo", "evolution", "C0"), ("diff", "differentiable", "C3"),
                                 ("eq", "differentiable at the evolution's time", "C1")):
        pts = sorted((r[f"{prefix}_latency_ms"], r[f"{prefix}_accuracy"]) for r in rows)
        front, best = [], -1.0
        for lat, acc in pts:  # non-dominated: more accurate than everything faster
            if acc > best:
                front.append((lat, acc))
                best = acc
        ax.scatter(*zip(*pts), s=10, color=color, alpha=0.5)
        ax.step(*zip(*front), where="post", color=color, label=label)
    for t in q["targets"]:
        ax.axvline(t, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("Note10 latency (ms)")
    ax.set_ylabel("predicted top-1")
    ax.legend(fontsize=7)
    rep.figure(fig, "fronts.png", "Accuracy against Note10 latency of every sub-network each strategy returned "
                                  "(all targets and seeds; dotted: the targets), with each strategy's front.")

    def flat(rs, source):
        return [{"source": source, **{k: v for k, v in r.items() if not k.endswith(("_arch", "_trajectory"))}}
                for r in rs]

    rep.data("runs.csv", flat(rows, "lut:note10") + flat(arows, atab.source))
    rep.data("summary.json", {"targets_ms": list(q["targets"]), "seeds": q["seeds"], "population": q["population"],
                              "generations": q["generations"], "latency_range_ms": [low, high],
                              "target_ratio": TARGET_RATIO, "note10": summary(rows), "rows": rows,
                              "analytical": {"source": atab.source, "resolutions": list(atab.resolutions),
                                             "latency_range_ms": [a_low, a_high], "targets_ms": a_targets,
                                             "build_seconds": t_build, **summary(arows), "rows": arows}})
    rep.write(command_line(NAME, args.quick))
    return 0


def per(rows, target):
    return [r for r in rows if r["target_ms"] == target]


def summary(rows) -> dict:
    reached = [r for r in rows if r["reach_ratio"] is not None]
    return {"runs": len(rows), "reached": len(reached),
            "within_ratio": sum(r["reach_ratio"] <= TARGET_RATIO for r in reached),
            "worst_ratio": max((r["reach_ratio"] for r in reached), default=None),
            "mean_gap_at_equal_time": mean([r["gap_at_equal_time"] for r in rows]),
            "min_gap_at_equal_time": min(r["gap_at_equal_time"] for r in rows)}


def headline(rows) -> str:
    s = summary(rows)
    worst = fmt(s["worst_ratio"], 3) if s["worst_ratio"] is not None else "-"
    return (f"The differentiable search reached the evolution's final accuracy in {s['reached']} of {s['runs']} runs, "
            f"within 1/5 of the evolution's wall time in {s['within_ratio']} of {s['runs']} (worst ratio {worst}); "
            f"given the evolution's wall time, its accuracy minus the evolution's averages "
            f"{fmt(s['mean_gap_at_equal_time'], 3)} (least {fmt(s['min_gap_at_equal_time'], 3)}). Predictor "
            f"evaluations per run: evolution {fmt(mean([r['evo_evaluations'] for r in rows]), 4)}, differentiable "
            f"(default budget) {fmt(mean([r['diff_evaluations'] for r in rows]), 4)}.")


def target_table(rep, rows) -> None:
    head = ["target ms", "evo top-1", "evo s", "diff top-1", "diff s", "evo top-1 at diff s", "reached",
            "reach s (mean / max)", "reach / evo s (mean / max)", "reach evals / evo evals (mean)",
            "diff top-1 at evo s", "gap at equal time"]
    body = []
    for t in sorted({r["target_ms"] for r in rows}):
        rs = per(rows, t)
        ok = [r for r in rs if r["reach_seconds"] is not None]
        at = [r["evo_accuracy_at_diff_seconds"] for r in rs]
        body.append([fmt(t, 3), fmt(mean([r["evo_accuracy"] for r in rs]), 4),
                     fmt(mean([r["evo_seconds"] for r in rs]), 3),
                     fmt(mean([r["diff_accuracy"] for r in rs]), 4), fmt(mean([r["diff_seconds"] for r in rs]), 3),
                     fmt(mean(at), 4) if any(a is not None for a in at) else "-",
                     f"{len(ok)}/{len(rs)}",
                     f"{fmt(mean([r['reach_seconds'] for r in ok]), 3)} / {fmt(max(r['reach_seconds'] for r in ok), 3)}"
                     if ok else "not reached",
                     f"{fmt(mean([r['reach_ratio'] for r in ok]), 3)} / {fmt(max(r['reach_ratio'] for r in ok), 3)}"
                     if ok else "-",
                     f"{fmt(mean([r['reach_evaluations'] for r in ok]), 4)} / "
                     f"{fmt(mean([r['evo_evaluations'] for r in rs]), 4)}" if ok else "-",
                     fmt(mean([r["eq_accuracy"] for r in rs]), 4), fmt(mean([r["gap_at_equal_time"] for r in rs]), 3)])
    rep.table(head, body)


def ablation_table(rep, rows) -> None:
    body = []
    for t in sorted({r["target_ms"] for r in rows}):
        rs = per(rows, t)
        miss = sum(r["local_reach_seconds"] is None for r in rs)
        local = (fmt(max(r["local_reach_seconds"] / r["evo_seconds"] for r in rs), 3) if not miss
                 else f"not reached in {miss} of {len(rs)}")
        body.append([fmt(t, 3)] + [fmt(mean([r[k] for r in rs]), 4) for k in
                                   ("evo_accuracy", "diff_accuracy", "grad_only_accuracy", "local_only_accuracy",
                                    "local_eq_accuracy")] + [local])
    rep.table(["target ms", "evolution", "differentiable", "gradient only (no local search)",
               "local search only, random starts", "local search only at evo s",
               "local-only reach / evo s (max)"], body)


if __name__ == "__main__":
    raise SystemExit(main())
