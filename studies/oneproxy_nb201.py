"""One proxy device: on NAS-Bench-201 cells measured on eight devices, how well does one
device's latency rank the cells for another (SRCC), and how much does AdaProxy recover from a
few target measurements?

Data: the latency set released with "One Proxy Device Is Enough for Hardware-Aware NAS"
(1999 cells; Myriad VPU, Pixel 3, Eyeriss, FPGA, Raspberry Pi 4, GTX GPU, Cortex-A76, Jetson).
A proxy's per-operator latencies come from a non-negative least-squares fit of its measured
cell latencies on an encoding of the cells: how many edges carry each of the 5 operations (over
all edges; over the live ones; or both counts plus the live edges' one-hot encoding, one
hypothesis each about how a device runs a cell). A cell's proxy vector is its encoding times
the per-operator latencies, plus the part of the measured latency the fit misses
(``codesign.validation.adaproxy.proxy_features``). AdaProxy then fits ``(alpha * 1 + b) o w`` to ``k``
target measurements on each encoding and keeps the one with the best validation SRCC, and
predicts with the average of 20 such fits on random subsamples of the ``k`` cells; the SRCC is
measured on the cells not used for the fit (mean over random draws of the ``k`` cells).
"""
from __future__ import annotations

import numpy as np

from models.assets import asset_path

from ._common import Report, adapt, command_line, fmt, parse_args, plt, spearman

NAME = "oneproxy_nb201"
ASSET = "nasbench201/oneproxy_latency.csv"
ORIGIN = "the data released with 'One Proxy Device Is Enough for Hardware-Aware Neural Architecture Search'"
DEVICE_TITLES = {"true_vpu": "Myriad VPU", "rice_pixel3": "Pixel 3", "rice_eyeriss": "Eyeriss",
                 "rice_fpga": "FPGA", "rice_raspi4": "Raspberry Pi 4", "eagle_gtx": "GTX GPU",
                 "true_a76": "Cortex-A76", "eagle_jetson": "Jetson"}
SAMPLES = (5, 10, 20, 50, 100, 200)
QUICK_SAMPLES = (10, 50)
DRAWS, QUICK_DRAWS = 10, 1
HEADLINE_K = 50


def load():
    """The latency table (``codesign.validation.monotonicity.LatencyTable``) and the latency (ms) per device."""
    from codesign.validation.monotonicity import load_latency_csv

    table = load_latency_csv(asset_path(ASSET, origin=ORIGIN))
    return table, table.columns


def proxy_vectors(table, y_proxy: np.ndarray) -> dict[str, np.ndarray]:
    """Per-cell proxy features for each default encoding (``codesign.validation.adaproxy.proxy_features``:
    the proxy's non-negative per-operator least-squares fit times the encoding, plus the part
    the fit misses)."""
    from codesign.validation.adaproxy import proxy_features
    from codesign.validation.monotonicity import DEFAULT_ENCODINGS

    return {e: proxy_features(table.encoding(e), y_proxy)[0] for e in DEFAULT_ENCODINGS}


def _pair_after(job) -> list[dict]:
    """For one (proxy, target) pair: SRCC before and after AdaProxy on the held-out cells, per
    number of target samples ``k``, over the given draws (permutations of the cells)."""
    W, y_proxy, y_target, samples, perms, seed = job
    out = []
    for k, draws in zip(samples, perms):
        b, a = [], []
        for perm in draws:
            tr, te = perm[:k], perm[k:]
            pred = adapt(W, tr, y_target[tr], te, seed)
            b.append(spearman(y_proxy[te], y_target[te]))
            if pred is not None:
                a.append(spearman(pred, y_target[te]))
        out.append({"k": k, "srcc_before_heldout": float(np.mean(b)),
                    "srcc_mean": float(np.mean(a)) if a else None, "srcc_min": float(np.min(a)) if a else None})
    return out


def main(argv=None) -> int:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    table, lat = load()
    devices = list(lat)
    nd = len(devices)
    samples = QUICK_SAMPLES if args.quick else SAMPLES
    draws = QUICK_DRAWS if args.quick else DRAWS
    rng = np.random.default_rng(args.seed)
    before = np.array([[spearman(lat[a], lat[b]) for b in devices] for a in devices])
    fits = {}
    for p in devices:
        W = proxy_vectors(table, lat[p])
        # the linear part of the first encoding: the last column is the residual the fit misses
        fits[p] = {"W": W, "srcc_fit": spearman(next(iter(W.values()))[:, :-1].sum(axis=1), lat[p])}
    # the draws are taken in a fixed order first, so that the result does not depend on --workers
    jobs = []
    for p in devices:
        for t in devices:
            if p != t:
                jobs.append((p, t, [[rng.permutation(len(lat[t])) for _ in range(draws)] for _ in samples]))
    work = [(fits[p]["W"], lat[p], lat[t], samples, perms, args.seed) for p, t, perms in jobs]
    if args.workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.workers) as ex:
            results = list(ex.map(_pair_after, work, chunksize=2))
    else:
        results = [_pair_after(w) for w in work]
    pairs = [{"proxy": p, "target": t, "srcc_before": before[devices.index(p), devices.index(t)], "after": r}
             for (p, t, _), r in zip(jobs, results)]
    have = any(e["after"][0]["srcc_mean"] is not None for e in pairs)

    rep = Report(NAME, "One proxy device: NAS-Bench-201 latency ranking across eight devices", args.out, args.quick)
    rep.p(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    rep.p(f"{len(table)} cells; per-operator NNLS fit of each proxy reproduces its own ranking with SRCC "
          + ", ".join(f"{DEVICE_TITLES.get(d, d)} {fmt(fits[d]['srcc_fit'], 3)}" for d in devices) + ".")
    off = before[~np.eye(nd, dtype=bool)]
    rep.h2("Headline")
    kk = HEADLINE_K if HEADLINE_K in samples else samples[-1]
    head = (f"Raw SRCC between devices ranges from {fmt(off.min(), 3)} to {fmt(off.max(), 3)} (mean {fmt(off.mean(), 3)}).")
    after = None
    if have:
        after = np.eye(nd)
        for e in pairs:
            after[devices.index(e["proxy"]), devices.index(e["target"])] = next(
                r["srcc_mean"] for r in e["after"] if r["k"] == kk)
        off_a = after[~np.eye(nd, dtype=bool)]
        best_proxy = max(devices, key=lambda d: np.mean([after[devices.index(d), j] for j in range(nd)
                                                         if j != devices.index(d)]))
        bi = devices.index(best_proxy)
        head += (f" With {kk} target measurements AdaProxy raises it to {fmt(off_a.min(), 3)}-{fmt(off_a.max(), 3)} "
                 f"(mean {fmt(off_a.mean(), 3)}); the best single proxy, {DEVICE_TITLES.get(best_proxy, best_proxy)}, "
                 f"reaches a mean SRCC of {fmt(np.mean([after[bi, j] for j in range(nd) if j != bi]), 3)} over the "
                 f"other seven devices.")
    else:
        head += " (AdaProxy is not available in this build: no adaptation.)"
    rep.p(head)
    titles = [DEVICE_TITLES.get(d, d) for d in devices]
    p = plt()
    mats = [(before, "raw SRCC (proxy vs target)")] + ([(after, f"after AdaProxy, {kk} target samples")] if have else [])
    fig, axes = p.subplots(1, len(mats), figsize=(5.6 * len(mats), 5), squeeze=False, layout="constrained")
    vmin = min(0.0, float(before.min()))
    for ax, (M, title) in zip(axes[0], mats):
        im = ax.imshow(M, vmin=vmin, vmax=1.0, cmap="viridis")
        ax.set_xticks(range(nd))
        ax.set_yticks(range(nd))
        ax.set_xticklabels(titles, rotation=60, ha="right", fontsize=7)
        ax.set_yticklabels(titles, fontsize=7)
        ax.set_xlabel("target")
        ax.set_ylabel("proxy")
        for i in range(nd):
            for j in range(nd):
                ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="w" if M[i, j] < (vmin + 1) / 2 else "k")
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label="SRCC")
    rep.figure(fig, "srcc_heatmap.png", "SRCC of latency rankings between the eight devices" +
               (", before and after AdaProxy." if have else "."))
    rep.h2("SRCC between devices (rows: proxy, columns: target)")
    rep.table(["proxy \\ target"] + titles, [[titles[i]] + [fmt(before[i, j], 3) for j in range(nd)] for i in range(nd)])
    if have:
        rep.h2(f"After AdaProxy ({kk} target samples)")
        rep.table(["proxy \\ target"] + titles,
                  [[titles[i]] + [fmt(after[i, j], 3) for j in range(nd)] for i in range(nd)])
        hard = sorted(pairs, key=lambda e: e["srcc_before"])[:6]
        fig, ax = p.subplots(figsize=(6.4, 4.2))
        for c, e in enumerate(hard):
            ks = [r["k"] for r in e["after"]]
            ax.plot(ks, [r["srcc_mean"] for r in e["after"]], "o-", color=f"C{c}", ms=4,
                    label=f"{DEVICE_TITLES.get(e['proxy'])} -> {DEVICE_TITLES.get(e['target'])}")
            ax.axhline(e["srcc_before"], color=f"C{c}", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xticks(list(samples))
        ax.set_xticklabels([str(k) for k in samples])
        ax.minorticks_off()
        ax.set_xlabel("target samples k")
        ax.set_ylabel("SRCC on held-out cells")
        ax.set_title("AdaProxy vs number of target samples (dotted: raw proxy)")
        ax.legend(fontsize=6)
        rep.figure(fig, "srcc_vs_samples.png", "The six hardest proxy/target pairs: SRCC after AdaProxy against "
                                               "the number of target measurements.")
        rep.h2("Mean SRCC over all proxy/target pairs vs target samples")
        rep.table(["k", "raw proxy (held-out cells)", "AdaProxy", "worst pair"],
                  [[k, fmt(np.mean([e["after"][i]["srcc_before_heldout"] for e in pairs]), 3),
                    fmt(np.mean([e["after"][i]["srcc_mean"] for e in pairs]), 3),
                    fmt(min(e["after"][i]["srcc_mean"] for e in pairs), 3)] for i, k in enumerate(samples)])
    rep.data("pairs.csv", [{"proxy": e["proxy"], "target": e["target"], "srcc_before": e["srcc_before"],
                            **{f"srcc_after_k{r['k']}": r["srcc_mean"] for r in e["after"]}} for e in pairs])
    rep.data("summary.json", {"devices": devices, "samples": list(samples), "draws": draws,
                              "srcc_before": before.tolist(), "pairs": pairs,
                              "proxy_fit_srcc": {d: fits[d]["srcc_fit"] for d in devices}})
    rep.write(command_line(NAME, args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
