"""NAS-Bench-201 under a latency target: what does searching with a proxy device's latency,
adapted by AdaProxy from a few target measurements, cost against searching with the measured
target latency?

Every cell's CIFAR-100 accuracy and Raspberry Pi 5 latency is tabulated (HW-NAS-Bench-360), so
the exact most accurate cell within a target is known and every found cell's true latency too.
For targets at the 25/50/75 % quantiles of the target runtime's latency over all cells, the
latency-target evolution of ``codesign search --space nasbench201 --max-latency MS``
(``codesign.search.nb201_latency.search``: the table's accuracy, a hard latency limit, population
50, 20 generations) searches with (a) the measured target latency (``pi5:RUNTIME``), (b) AdaProxy
from a proxy device of the "One Proxy Device" set adapted with N target cells
(``adaproxy:RUNTIME:PROXY:N``), (c) the proxy's own latency model rescaled to the target by
least squares on the same N cells (``alpha * proxy + c``: no per-operator correction). Per run:
the found cell's accuracy gap to the exact optimum within the target (negative when it beats
it by violating the target), whether its true latency violates the target and by how much; per
source: the SRCC of its latency against the measured one over all 15,625 cells. The seed draws
the N target cells and seeds the evolution.
"""
from __future__ import annotations

import time

import numpy as np

from ._common import Report, command_line, fmt, parse_args, plt

NAME = "nb201_latency_sources"
TARGET_RUNTIMES = ("litert", "onnx")
PROXIES = ("rice_raspi4", "eagle_gtx")  # a Raspberry Pi 4 (the nearest device) and a desktop GPU (the farthest)
SAMPLES = (10, 30, 50)
QUANTILES = (25, 50, 75)
SEEDS = 5
POPULATION, GENERATIONS = 50, 20
VERIFY = 5  # the most accurate cells of the search's front measured on the target after the search (--verify)
QUICK = {"runtimes": ("litert",), "proxies": ("rice_raspi4",), "samples": (10, 30), "quantiles": (25, 75),
         "seeds": 1}
METHOD_TITLES = {"measured": "measured target latency", "adaproxy": "AdaProxy",
                 "scaled": "proxy rescaled (alpha, c)"}


def sources(runtime: str, proxies, samples, seed: int) -> list[tuple[str, str | None, int | None, object]]:
    """``(method, proxy, N, Nb201Latency)`` of every latency source of one seed."""
    from codesign.validation.nb201_latency import latency_source, scaled_proxy

    out = [("measured", None, None, latency_source(f"pi5:{runtime}", seed))]
    for p in proxies:
        for n in samples:
            out.append(("adaproxy", p, n, latency_source(f"adaproxy:{runtime}:{p}:{n}", seed)))
            out.append(("scaled", p, n, scaled_proxy(runtime, p, n, seed)))
    return out


def main(argv=None) -> int:
    from codesign.search.nb201_latency import optimum, search, verify
    from models.nb201_table import load_hw360

    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    q = QUICK if args.quick else {"runtimes": TARGET_RUNTIMES, "proxies": PROXIES, "samples": SAMPLES,
                                  "quantiles": QUANTILES, "seeds": SEEDS}
    table = load_hw360()
    seeds = [args.seed + i for i in range(q["seeds"])]
    runs, srccs, optima = [], [], []
    for rt in q["runtimes"]:
        true = table.latency(rt)
        targets = {pct: float(np.percentile(true, pct)) for pct in q["quantiles"]}
        for pct, t in targets.items():
            o = optimum(table.accuracy, true, t)
            optima.append({"runtime": rt, "quantile": pct, "target_ms": t, "accuracy": float(table.accuracy[o]),
                           "latency_ms": float(true[o]), "arch": table.arch_strs[o]})

        def optima_of(rt, pct):
            return next(o for o in optima if (o["runtime"], o["quantile"]) == (rt, pct))

        for s in seeds:
            for method, proxy, n, src in sources(rt, q["proxies"], q["samples"], s):
                srccs.append({"runtime": rt, "method": method, "proxy": proxy, "samples": n, "seed": s,
                              "srcc": src.srcc})
                for pct, t in targets.items():
                    run = {"runtime": rt, "quantile": pct, "target_ms": t, "method": method, "proxy": proxy,
                           "samples": n, "seed": s}
                    e = optimum(table.accuracy, src.latency_ms, t)  # the exact answer the source gives
                    if e is None:  # the source puts every cell over the target: nothing to search
                        runs.append({**run, "infeasible": True})
                        continue
                    t0 = time.perf_counter()
                    r = search(src, t, population=POPULATION, generations=GENERATIONS, seed=s)
                    b, tr = r["best"], r["truth"]
                    hv = tr["hypervolume_median_ref"]
                    v = verify(r["front"], src, t, VERIFY)  # codesign search ... --verify VERIFY
                    runs.append({**run, "infeasible": False, "accuracy": b["true_accuracy"],
                                 "latency_ms": b["latency_ms"], "true_latency_ms": b["true_latency_ms"],
                                 "gap": tr["accuracy_gap"], "violates": not b["meets_target"],
                                 "excess": max(0.0, b["true_latency_ms"] / t - 1.0),
                                 "evaluated_over_target": tr["violations"], "distinct_evaluated": r["distinct_evaluated"],
                                 "hv_ratio_median_ref": hv["ratio"] if hv else None,
                                 "exact_gap": optima_of(rt, pct)["accuracy"] - float(table.accuracy[e]),
                                 "exact_violates": bool(true[e] > t),
                                 "verified_gap": v["accuracy_gap"], "seconds": time.perf_counter() - t0})

    def group(rt, method, proxy, n):
        return [r for r in runs if (r["runtime"], r["method"], r["proxy"], r["samples"]) == (rt, method, proxy, n)
                and not r["infeasible"]]

    summary = []
    for rt in q["runtimes"]:
        keys = [("measured", None, None)] + [(m, p, n) for p in q["proxies"] for m in ("adaproxy", "scaled")
                                             for n in q["samples"]]
        for m, p, n in keys:
            g = group(rt, m, p, n)
            viol = [r for r in g if r["violates"]]
            ok = [r for r in g if not r["violates"]]
            sr = [x["srcc"] for x in srccs if (x["runtime"], x["method"], x["proxy"], x["samples"]) == (rt, m, p, n)]
            infeasible = sum(r["infeasible"] for r in runs
                             if (r["runtime"], r["method"], r["proxy"], r["samples"]) == (rt, m, p, n))
            row = {"runtime": rt, "method": m, "proxy": p, "samples": n, "runs": len(g), "infeasible": infeasible,
                   "srcc_mean": float(np.mean(sr)), "srcc_min": float(np.min(sr))}
            vg = [r["verified_gap"] for r in g if r["verified_gap"] is not None]
            if g:
                row.update({"gap_mean": float(np.mean([r["gap"] for r in g])),
                            "gap_mean_meeting": float(np.mean([r["gap"] for r in ok])) if ok else None,
                            "violations": len(viol), "violation_share": len(viol) / len(g),
                            "excess_mean_violating": float(np.mean([r["excess"] for r in viol])) if viol else None,
                            "excess_max": float(max(r["excess"] for r in g)),
                            "exact_gap_mean": float(np.mean([r["exact_gap"] for r in g])),
                            "exact_violations": sum(r["exact_violates"] for r in g),
                            "verified_misses": sum(r["verified_gap"] is None for r in g),
                            "verified_gap_mean": float(np.mean(vg)) if vg else None})
            else:
                row.update(dict.fromkeys(("gap_mean", "gap_mean_meeting", "violations", "violation_share",
                                          "excess_mean_violating", "excess_max", "exact_gap_mean",
                                          "exact_violations", "verified_misses", "verified_gap_mean")))
            summary.append(row)

    rep = Report(NAME, "NAS-Bench-201 under a latency target: measured latency against AdaProxy from a proxy "
                       "device", args.out, args.quick)
    rep.p(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    meas = [s for s in summary if s["method"] == "measured"]
    ada = [s for s in summary if s["method"] == "adaproxy"]
    sc = [s for s in summary if s["method"] == "scaled"]
    rep.h2("Headline")

    ada30 = [s for s in ada if s["samples"] >= 30]

    def span(rows, key, scale=1.0):
        v = [scale * r[key] for r in rows if r[key] is not None]
        return f"{fmt(min(v), 3)}-{fmt(max(v), 3)}" if v else "-"

    rep.p(f"With the measured latency the search violates the target in {sum(s['violations'] for s in meas)} of "
          f"{sum(s['runs'] for s in meas)} runs and ends {span(meas, 'gap_mean')} below the exact optimum on "
          f"average (top-1, fraction). AdaProxy ranks all cells with an SRCC of {span(ada, 'srcc_mean')} against "
          f"the measured latency (the rescaled proxy: {span(sc, 'srcc_mean')}); its found cell violates the target "
          f"in {span(ada, 'violation_share', 100)} % of the runs (rescaled proxy: {span(sc, 'violation_share', 100)} %), "
          f"by {span(ada, 'excess_mean_violating', 100)} % on average when it does. The search goes for the most "
          f"accurate cell the prediction puts under the target, most often one whose latency it underestimates. "
          f"Measuring the {VERIFY} most accurate cells of the search's front on the target afterwards and keeping the "
          f"best that meets it leaves AdaProxy (N >= 30) without a cell in {sum(s['verified_misses'] for s in ada30)} "
          f"of {sum(s['runs'] for s in ada30)} runs and {span(ada30, 'verified_gap_mean')} below the optimum on "
          f"average (measured latency: {span(meas, 'verified_gap_mean')}).")
    rep.h2("Per latency source (over targets and seeds)")
    rep.p("The exact columns take the most accurate cell within the target by the source's latency over the whole "
          "table (no search): what the latency source alone costs, without the evolution's own shortfall. The "
          f"verified columns measure the {VERIFY} most accurate cells of the search's front on the target after the "
          f"search and keep the most accurate one that meets it ({VERIFY} more target measurements).")
    rep.table(["target runtime", "source", "proxy", "N", "SRCC vs measured (mean)", "min", "accuracy gap (mean)",
               "gap of runs meeting the target", "runs violating", "mean excess of those", "largest excess",
               "exact: gap (mean)", "exact: violating", f"verified top {VERIFY}: none meets",
               "verified: gap (mean)", "targets below every prediction"],
              [[s["runtime"], METHOD_TITLES[s["method"]], s["proxy"] or "-", str(s["samples"] or "-"),
                fmt(s["srcc_mean"], 3), fmt(s["srcc_min"], 3), fmt(s["gap_mean"], 3),
                fmt(s["gap_mean_meeting"], 3) if s["gap_mean_meeting"] is not None else "-",
                f"{s['violations']} of {s['runs']}",
                f"{fmt(100 * s['excess_mean_violating'], 3)} %" if s["excess_mean_violating"] is not None else "-",
                f"{fmt(100 * s['excess_max'], 3)} %", fmt(s["exact_gap_mean"], 3),
                f"{s['exact_violations']} of {s['runs']}", f"{s['verified_misses']} of {s['runs']}",
                fmt(s["verified_gap_mean"], 3) if s["verified_gap_mean"] is not None else "-",
                str(s["infeasible"])] for s in summary])
    rep.h2("Targets and the exact optimum within each")
    rep.table(["runtime", "quantile", "target (ms)", "best accuracy within it", "its latency (ms)"],
              [[o["runtime"], f"{o['quantile']} %", fmt(o["target_ms"], 4), fmt(o["accuracy"], 4),
                fmt(o["latency_ms"], 4)] for o in optima])

    p = plt()
    fig, axes = p.subplots(len(q["runtimes"]), 3, figsize=(13, 3.6 * len(q["runtimes"])), squeeze=False)
    for row, rt in zip(axes, q["runtimes"]):
        m = next(s for s in meas if s["runtime"] == rt)
        for ax, key, ylab in zip(row, ("srcc_mean", "violation_share", "verified_gap_mean"),
                                 ("SRCC vs measured latency", "share of runs violating the target",
                                  f"gap to the optimum, top {VERIFY} verified (mean)")):
            ax.axhline(m[key], color="k", lw=1, ls="--", label="measured latency")
            for c, pr in enumerate(q["proxies"]):
                for meth, ls in (("adaproxy", "-"), ("scaled", ":")):
                    g = [s for s in summary if (s["runtime"], s["method"], s["proxy"]) == (rt, meth, pr)]
                    ax.plot([s["samples"] for s in g], [np.nan if s[key] is None else s[key] for s in g], ls, marker="o", ms=4, color=f"C{c}",
                            label=f"{METHOD_TITLES[meth]}, {pr}")
            ax.set_xlabel("target samples N")
            ax.set_ylabel(ylab)
            ax.set_xticks(list(q["samples"]))
            ax.set_title(f"target: Pi 5 {rt}", fontsize=9)
        row[0].legend(fontsize=6)
    rep.figure(fig, "nb201_latency_sources.png", "Latency sources of the NAS-Bench-201 latency-target search: ranking "
                                                 "quality (SRCC over all cells), how often the found cell truly "
                                                 "violates the target, and the accuracy gap to the exact optimum of "
                                                 f"the best of the {VERIFY} most accurate front cells that truly meets "
                                                 "it.")
    rep.data("runs.csv", runs)
    rep.data("srcc.csv", srccs)
    rep.data("summary.json", {"summary": summary, "optima": optima, "srcc": srccs, "runs": runs, "seeds": seeds,
                              "population": POPULATION, "generations": GENERATIONS, **{k: list(v) if isinstance(
                                  v, tuple) else v for k, v in q.items()}})
    rep.write(command_line(NAME, args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
