"""What fits a microcontroller: the most accurate OFA MobileNetV3 sub-network within an SRAM bound,
per input resolution, with peak activation memory counted layer by layer and patch-based.

For each SRAM bound (128, 256, 320 and 512 kB: STM32F411, STM32F412 / nRF52840, STM32F746,
STM32H743 / STM32F767) and each resolution the accuracy predictor covers (112 to 224 in steps of
16), the sub-network search alone (``codesign search --objective accuracy``: evolution
maximizing the OFA authors' predicted ImageNet top-1 among the sub-networks whose peak SRAM is
within the bound; population 100, 20 generations, two seeds, the better kept) runs once with the
peak counted layer by layer and once with the best 4x4 patch-based first stage (MCUNetV2).
Activations and weights are int8 (``accelerators.memory``); Flash is reported beside, and a
last table bounds it too. The predictor's resolution input has bins from 112 to 224, but the
OFA search (and this space's sampling) uses 160 to 224: below 160 its numbers are
extrapolations, so the headline also gives the best at r >= 160.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

from ._common import Report, command_line, fmt, parse_args, plt

NAME = "mcu_fit"
SPACE = "ofa-mbv3"
SRAM_KB = (128, 256, 320, 512)
RESOLUTIONS = (112, 128, 144, 160, 176, 192, 208, 224)
SCHEDULES = ("layer", "patch")
FLASH_KB = (4608, 5120, 6144, 8192)    # Flash bounds of the last table (with 256 kB SRAM, patch-based)
POPULATION, GENERATIONS, SEEDS = 100, 20, 2
QUICK = {"sram": (256,), "res": (112, 160), "population": 12, "generations": 2, "seeds": 1, "flash": (5120,)}
HEADLINE_KB = 256
SAMPLED_FROM = 160  # the OFA search samples 160..224; below, the predictor extrapolates


def one(job) -> dict:
    """The most accurate sub-network within the bounds (or how close the best came)."""
    sram_kb, r, schedule, flash_kb, population, generations, seed = job
    from codesign.search import SearchConfig
    from codesign.search.outer_loop import search_subnet
    from codesign.search.subnet_evolution import InfeasibleError

    cfg = SearchConfig(workloads=[], envelope=None, space=SPACE, objective="accuracy", max_sram_kb=sram_kb,
                       max_flash_kb=flash_kb, sram_schedule=schedule, resolution=r, population=population,
                       generations=generations, seed=seed)
    row = {"sram_kb": sram_kb, "flash_bound_kb": flash_kb, "resolution": r, "schedule": schedule, "seed": seed}
    try:
        res = search_subnet(cfg)
    except InfeasibleError as e:
        return {**row, "fits": False, "smallest_peak_kb": e.closest.get("peak_sram_bytes", 0) / 1024,
                "smallest_flash_kb": e.closest.get("flash_bytes", 0) / 1024}
    b = res["best"]
    return {**row, "fits": True, "accuracy": b["accuracy"], "peak_kb": b["peak_sram_kb"], "flash_kb": b["flash_kb"],
            "macs_m": b["macs"] / 1e6, "patch_layers": b["patch_layers"], "evaluated": res["evaluated"],
            "arch": b["arch"], "seconds": res["seconds"]}


def smallest(r: int, schedule: str) -> dict:
    """Peak SRAM and Flash of the smallest sub-network (kernel 3, expand 3, depth 2 everywhere)."""
    from accelerators.memory import peak_memory
    from models.spaces import get_space

    arch = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": r}
    net = get_space(SPACE).to_network(arch)
    pm = peak_memory(net, schedule)
    head = sum(l.params for l in net.layers if l.name in ("final_expand_layer", "feature_mix_layer", "classifier"))
    return {"peak_kb": pm.peak_sram_bytes / 1024, "flash_kb": pm.flash_bytes / 1024, "head_flash_kb": head / 1024}


def best_of_seeds(rows: list[dict]) -> list[dict]:
    """Per (bound, resolution, schedule, Flash bound): the seed with the highest accuracy, with the
    spread between seeds."""
    out = {}
    for r in rows:
        k = (r["sram_kb"], r["resolution"], r["schedule"], r["flash_bound_kb"])
        acc = [x["accuracy"] for x in rows if (x["sram_kb"], x["resolution"], x["schedule"], x["flash_bound_kb"]) == k
               and x["fits"]]
        if k not in out or (r["fits"] and (not out[k]["fits"] or r["accuracy"] > out[k]["accuracy"])):
            out[k] = {**r, "seed_spread": (max(acc) - min(acc)) if acc else None}
    return list(out.values())


def main(argv=None) -> int:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    q = QUICK if args.quick else {"sram": SRAM_KB, "res": RESOLUTIONS, "population": POPULATION,
                                  "generations": GENERATIONS, "seeds": SEEDS, "flash": FLASH_KB}
    seeds = [args.seed + i for i in range(q["seeds"])]
    jobs = [(b, r, s, None, q["population"], q["generations"], seed)
            for b in q["sram"] for r in q["res"] for s in SCHEDULES for seed in seeds]

    def run_all(js):
        if args.workers > 1:
            with ProcessPoolExecutor(args.workers) as ex:
                return list(ex.map(one, js))
        return [one(j) for j in js]

    raw = run_all(jobs)
    best = best_of_seeds(raw)
    # the Flash table: 256 kB SRAM, patch-based, at the resolution where that row did best
    row256 = [b for b in best if b["sram_kb"] == HEADLINE_KB and b["schedule"] == "patch" and b["fits"]]
    r_flash = max(row256, key=lambda b: b["accuracy"])["resolution"] if row256 else q["res"][0]
    flash_raw = run_all([(HEADLINE_KB, r_flash, "patch", f, q["population"], q["generations"], seed)
                         for f in q["flash"] for seed in seeds])
    flash_best = best_of_seeds(flash_raw)
    small = {(r, s): smallest(r, s) for r in q["res"] for s in SCHEDULES}

    def cell(b, s, r):
        return next(x for x in best if x["sram_kb"] == b and x["schedule"] == s and x["resolution"] == r)

    rep = Report(NAME, "What fits a microcontroller (OFA MobileNetV3, int8)", args.out, args.quick)
    rep.p(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    rep.h2("Headline")
    head = []
    for s in SCHEDULES:
        fits = [cell(HEADLINE_KB, s, r) for r in q["res"] if cell(HEADLINE_KB, s, r)["fits"]]
        if fits:
            top = max(fits, key=lambda x: x["accuracy"])
            sampled = [x for x in fits if x["resolution"] >= SAMPLED_FROM]
            hi = max(sampled, key=lambda x: x["accuracy"]) if sampled else None
            head.append(f"{'patch-based' if s == 'patch' else 'layer by layer'}: predicted top-1 "
                        f"{fmt(top['accuracy'], 4)} at r={top['resolution']} (peak {top['peak_kb']:.1f} kB, "
                        f"{top['macs_m']:.1f} M MACs, Flash {top['flash_kb']:.0f} kB)"
                        + (f", {fmt(hi['accuracy'], 4)} at r={hi['resolution']} among r >= {SAMPLED_FROM}"
                           if hi is not None and hi is not top else ""))
        else:
            low = min(small[(r, s)]["peak_kb"] for r in q["res"])
            head.append(f"{'patch-based' if s == 'patch' else 'layer by layer'}: nothing fits (the smallest "
                        f"sub-network at the lowest resolution needs {fmt(low, 4)} kB)")
    min_flash = min(v["flash_kb"] for v in small.values())
    head_kb = next(iter(small.values()))["head_flash_kb"]
    rep.p(f"Within {HEADLINE_KB} kB of SRAM: " + "; ".join(head) + f". No sub-network of this space fits a 1 or "
          f"2 MB Flash: the smallest one's int8 weights take {fmt(min_flash, 4)} kB, {fmt(head_kb, 4)} kB of them in "
          f"the fixed head (final expansion, the 1536-wide feature mix and the 1000-class classifier).")
    rep.h2("Best predicted top-1 within the SRAM bound")
    rep.p("`-` where the search found nothing that fits (after 200 samples and mutations towards the bound; the "
          "smallest sub-network's peak, in the next table, says whether anything could). "
          f"Best of {len(seeds)} seed(s); the largest difference between seeds over all cells is "
          f"{fmt(max([b['seed_spread'] for b in best if b['seed_spread'] is not None] or [0.0]), 3)}.")
    head_cols = ["SRAM bound", "schedule"] + [f"r={r}" for r in q["res"]] + ["best"]
    rows = []
    for b in q["sram"]:
        for s in SCHEDULES:
            cells = [cell(b, s, r) for r in q["res"]]
            ok = [c for c in cells if c["fits"]]
            rows.append([f"{b} kB", s] + [fmt(c["accuracy"], 4) if c["fits"] else "-" for c in cells]
                        + [fmt(max(c["accuracy"] for c in ok), 4) if ok else "-"])
    rep.table(head_cols, rows)
    rep.h2("Smallest sub-network's peak SRAM and Flash (kB)")
    rep.p("Kernel 3, expand ratio 3 and depth 2 in every stage: the least any sub-network needs layer by layer "
          "(the peak is stage 1's first expansion, 24 -> 72 channels at r/2); Flash does not depend on r.")
    rep.table(["schedule"] + [f"r={r}" for r in q["res"]],
              [[s] + [f"{small[(r, s)]['peak_kb']:.1f}" for r in q["res"]] for s in SCHEDULES]
              + [["Flash"] + [f"{small[(r, 'layer')]['flash_kb']:.0f}" for r in q["res"]]])
    rep.h2("The chosen sub-networks")
    rep.table(["SRAM bound", "schedule", "r", "top-1", "peak kB", "patch stage (layers)", "Flash kB", "MACs (M)",
               "evaluated"],
              [[f"{c['sram_kb']} kB", c["schedule"], str(c["resolution"]), fmt(c["accuracy"], 4), f"{c['peak_kb']:.1f}",
                str(c["patch_layers"]), f"{c['flash_kb']:.0f}", f"{c['macs_m']:.1f}", str(c["evaluated"])]
               for c in best if c["fits"]])
    rep.h2(f"Bounding Flash too ({HEADLINE_KB} kB SRAM, patch-based, r={r_flash})")
    rep.table(["Flash bound", "top-1", "Flash kB", "peak kB", "MACs (M)"],
              [[f"{c['flash_bound_kb']} kB"] + ([fmt(c["accuracy"], 4), f"{c['flash_kb']:.0f}", f"{c['peak_kb']:.1f}",
                                                 f"{c['macs_m']:.1f}"] if c["fits"] else ["-"] * 4)
               for c in flash_best])

    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(11, 4))
    for j, b in enumerate(q["sram"]):
        for s, ls in zip(SCHEDULES, ("--", "-")):
            pts = [(r, cell(b, s, r)["accuracy"]) for r in q["res"] if cell(b, s, r)["fits"]]
            if pts:
                axes[0].plot(*zip(*pts), ls, marker="o", ms=3, color=f"C{j}", label=f"{b} kB, {s}")
    axes[0].set_xlabel("input resolution")
    axes[0].set_ylabel("best predicted top-1")
    axes[0].set_title("within the SRAM bound (dashed: layer by layer)", fontsize=9)
    axes[0].legend(fontsize=6)
    width = 0.38
    for k, s in enumerate(SCHEDULES):
        vals = []
        for b in q["sram"]:
            ok = [cell(b, s, r)["accuracy"] for r in q["res"] if cell(b, s, r)["fits"]]
            vals.append(max(ok) if ok else 0.0)
        axes[1].bar([i + k * width for i in range(len(q["sram"]))], vals, width=width, label=s)
    axes[1].set_xticks([i + width / 2 for i in range(len(q["sram"]))])
    axes[1].set_xticklabels([f"{b} kB" for b in q["sram"]])
    lo = min([c["accuracy"] for c in best if c["fits"]] or [0.7])
    axes[1].set_ylim(max(0.0, lo - 0.02), None)
    axes[1].set_ylabel("best predicted top-1 (any resolution; 0: nothing fits)")
    axes[1].set_title("layer by layer vs patch-based", fontsize=9)
    axes[1].legend(fontsize=7)
    rep.figure(fig, "mcu_fit.png", "Best predicted ImageNet top-1 of an OFA MobileNetV3 sub-network within each SRAM "
                                   "bound, per resolution (left) and over all resolutions (right).")
    rep.data("fits.csv", [{k: v for k, v in r.items() if k != "arch"} for r in raw + flash_raw])
    rep.data("summary.json", {"best": best, "flash": flash_best, "raw": raw + flash_raw,
                              "smallest": [{"resolution": r, "schedule": s, **v} for (r, s), v in small.items()],
                              "population": q["population"], "generations": q["generations"], "seeds": seeds})
    rep.write(command_line(NAME, args.quick, f"--workers {args.workers}" if args.workers > 1 else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
