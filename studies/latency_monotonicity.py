"""Latency monotonicity: do different hardware rank the same sub-networks the same way?

Over sampled OFA MobileNetV3 sub-networks, latency comes from the analytical cost model on
several accelerator presets, the HotNAS model of the nine ZCU102 designs, the Samsung Note10
per-operator lookup table of the OFA authors, and a measurement on this CPU; MACs are included
as the hardware-blind proxy. The Spearman rank correlation (SRCC) between every pair of sources
says whether a search that ranks sub-networks on one would rank them the same on the other.
Where SRCC < 0.9, AdaProxy adapts the proxy's per-block latencies to the target from a few
target measurements, and the SRCC on the remaining sub-networks is reported again.
"""
from __future__ import annotations

import math
import re
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ._common import Report, adapt, command_line, fmt, measure_cpu_ms, parse_args, plt, spearman

NAME = "latency_monotonicity"
SPACE = "ofa-mbv3"
PRESETS = ("eyeriss", "nvdla-256", "shidiannao", "edgetpu")
QUICK_PRESETS = ("eyeriss", "shidiannao")
N_ARCHS, QUICK_ARCHS = 1000, 20
TARGET_SAMPLES, QUICK_TARGET_SAMPLES = 50, 15
DRAWS = 5
REPAIR_BELOW = 0.9


def sample_archs(n: int, seed: int) -> list[dict]:
    from models.spaces import get_space

    space, rng = get_space(SPACE), np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def slot_names() -> list[str]:
    return ["first_conv", "block0"] + [f"stage{s}.block{j}" for s in range(5) for j in range(4)] + \
        ["final_expand_layer", "feature_mix_layer", "classifier"]


def slot_index(layer_name: str, arch: dict) -> int:
    """The position of a layer in the fixed per-block feature vector (``slot_names``): OFA
    sub-networks number their blocks in order, so block ``k`` is slot (stage, depth index)."""
    names = slot_names()
    m = re.match(r"blocks\.(\d+)\.", layer_name)
    if not m:
        return names.index(layer_name)
    k = int(m.group(1))
    if k == 0:
        return 1
    k -= 1
    for s, d in enumerate(arch["d"]):
        if k < d:
            return 2 + 4 * s + k
        k -= d
    raise ValueError(f"block {layer_name} beyond the sub-network's depth")


def per_slot(layer_latencies, arch: dict) -> np.ndarray:
    v = np.zeros(len(slot_names()))
    for name, ms in layer_latencies:
        v[slot_index(name, arch)] += ms
    return v


def analytical(preset: str, archs: list[dict], cache_dir: str, seed: int) -> np.ndarray:
    """Per-slot latency (ms) of every sub-network on ``preset`` (heuristic mapper, disk cache)."""
    from mappings.cache import MappingCache
    from mappings.evaluate import evaluate_network
    from models.spaces import get_space

    space, cache = get_space(SPACE), MappingCache(directory=cache_dir)
    out = []
    for a in archs:
        nc = evaluate_network(space.to_network(a), preset, optimizer="heuristic", cache=cache, seed=seed)
        out.append(per_slot([(l.name, l.cost.latency_ms) for l in nc.layers], a))
    return np.array(out)


def fpga(design: str, archs: list[dict]) -> np.ndarray:
    from accelerators.fpga import hotnas_network, load_preset
    from accelerators.fpga.hotnas import preset_board
    from models.spaces import get_space

    space, d, board = get_space(SPACE), load_preset(design), preset_board(design)
    return np.array([per_slot([(l.name, l.latency_ms) for l in hotnas_network(space.to_network(a), d, board).layers], a)
                     for a in archs])


def macs(archs: list[dict]) -> np.ndarray:
    from models.spaces import get_space

    space = get_space(SPACE)
    return np.array([per_slot([(l.name, float(l.macs)) for l in space.to_network(a).layers], a) for a in archs])


def lut_per_slot(ops, arch: dict) -> np.ndarray:
    """Per-slot latency from a per-operator table's ``[(key, ms)]`` in network order: the
    first conv, the fixed first block, one entry per active block, then the head operators
    (``Conv_1`` final expand, ``AvgPool2D`` counted with it, ``Conv_2`` feature mix, ``Logits``)."""
    names, v = slot_names(), np.zeros(len(slot_names()))
    n_blocks = sum(arch["d"])
    head = {"Conv_1": "final_expand_layer", "AvgPool2D": "final_expand_layer",
            "Conv_2": "feature_mix_layer", "Logits": "classifier"}
    for i, (key, ms) in enumerate(ops):
        if i == 0:
            slot = 0
        elif i <= n_blocks + 1:
            slot = slot_index(f"blocks.{i - 1}.", arch)
        else:
            slot = names.index(head[key.split("-", 1)[0]])
        v[slot] += ms
    return v


def note10(archs: list[dict]):
    """Per-slot latency from the Note10 lookup table (the ``lut:note10`` latency backend)."""
    from codesign.validation.latency import get_backend

    backend = get_backend("lut:note10")
    return np.array([lut_per_slot(backend.layer_latencies(a, space=SPACE), a) for a in archs])


def cpu(archs: list[dict], repeats: int) -> np.ndarray:
    from models.spaces import get_space

    space = get_space(SPACE)
    return np.array([ms for ms, _ in measure_cpu_ms([space.to_network(a) for a in archs], repeats, warmup=1)])


def repair(W: np.ndarray, y: np.ndarray, k: int, seed: int) -> dict | None:
    """SRCC on held-out sub-networks before and after AdaProxy with ``k`` target samples,
    averaged over ``DRAWS`` random draws of the samples."""
    rng = np.random.default_rng(seed)
    before, after = [], []
    for _ in range(DRAWS):
        perm = rng.permutation(len(y))
        tr, te = perm[:k], perm[k:]
        pred = adapt(W, tr, y[tr], te, seed)
        if pred is None:
            return None
        before.append(spearman(W[te].sum(axis=1), y[te]))
        after.append(spearman(pred, y[te]))
    return {"before": float(np.mean(before)), "after": float(np.mean(after)), "after_min": float(np.min(after))}


def main(argv=None) -> int:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    quick = args.quick
    archs = sample_archs(QUICK_ARCHS if quick else N_ARCHS, args.seed)
    presets = QUICK_PRESETS if quick else PRESETS
    from accelerators.fpga.hotnas import preset_names

    designs = preset_names()
    cache_dir = str(args.out / "mapping-cache")
    vec: dict[str, np.ndarray] = {"macs": macs(archs)}
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as ex:
            futs = {p: ex.submit(analytical, p, archs, cache_dir, args.seed) for p in presets}
            for p, f in futs.items():
                vec[f"sim:{p}"] = f.result()
    else:
        for p in presets:
            vec[f"sim:{p}"] = analytical(p, archs, cache_dir, args.seed)
    for d in designs:
        vec[f"fpga:{d}"] = fpga(d, archs)
    lut = note10(archs)
    if lut is not None:
        vec["lut:note10"] = lut
    totals = {k: v.sum(axis=1) for k, v in vec.items()}
    totals["cpu:torch"] = cpu(archs, 3 if quick else 5)
    sources = list(totals)
    n = len(sources)
    S = np.array([[spearman(totals[a], totals[b]) for b in sources] for a in sources])

    k = QUICK_TARGET_SAMPLES if quick else TARGET_SAMPLES
    repairs = []
    for i, proxy in enumerate(sources):
        if proxy not in vec or proxy == "macs":
            continue  # a proxy needs per-block latencies (the CPU is only measured end to end)
        for j, target in enumerate(sources):
            if i == j or S[i, j] >= REPAIR_BELOW:
                continue
            r = repair(vec[proxy], totals[target], k, args.seed)
            repairs.append({"proxy": proxy, "target": target, "srcc_all": S[i, j],
                            **(r or {"before": None, "after": None, "after_min": None})})
    have_adaproxy = any(r["after"] is not None for r in repairs)

    rep = Report(NAME, "Latency monotonicity across hardware (OFA MobileNetV3 sub-networks)", args.out, quick)
    rep.p(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    rep.p(f"{len(archs)} sub-networks sampled uniformly from the {SPACE} space (seed {args.seed}); presets "
          f"{', '.join(presets)} mapped with the heuristic mapper; ZCU102 designs {designs[0]}..{designs[-1]}; CPU: "
          "PyTorch, one thread, median of " + ("3" if quick else "5") + " runs interleaved across the sub-networks."
          + ("" if lut is not None else " The Note10 lookup-table backend is not available in this build: its "
             "row is missing."))
    off = S[~np.eye(n, dtype=bool)]
    low = [(sources[i], sources[j], S[i, j]) for i in range(n) for j in range(i + 1, n) if S[i, j] < REPAIR_BELOW]
    rep.h2("Headline")
    rep.p(f"SRCC between sources ranges from {fmt(off.min(), 3)} to {fmt(off.max(), 3)}; {len(low)} of "
          f"{n * (n - 1) // 2} pairs are below {REPAIR_BELOW}." + (
              f" With {k} target samples AdaProxy raises the mean SRCC of those pairs from "
              f"{fmt(np.mean([r['before'] for r in repairs if r['after'] is not None]), 3)} to "
              f"{fmt(np.mean([r['after'] for r in repairs if r['after'] is not None]), 3)}." if have_adaproxy else
              " (AdaProxy is not available in this build: no repair.)"))
    p = plt()
    fig, ax = p.subplots(figsize=(0.45 * n + 3, 0.45 * n + 2))
    vmin = min(0.8, math.floor(float(S.min()) * 10) / 10)
    im = ax.imshow(S, vmin=vmin, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(sources, rotation=90, fontsize=7)
    ax.set_yticklabels(sources, fontsize=7)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{S[i, j]:.2f}", ha="center", va="center", fontsize=5,
                    color="w" if S[i, j] < (vmin + 1) / 2 else "k")
    fig.colorbar(im, ax=ax, shrink=0.7, label="SRCC")
    ax.set_title(f"SRCC of latency rankings ({len(archs)} OFA MobileNetV3 sub-networks)", fontsize=9)
    rep.figure(fig, "srcc_heatmap.png", "Rank correlation of the latencies of the same sub-networks across sources.")
    rep.h2("SRCC matrix")
    rep.table(["source"] + sources, [[a] + [fmt(S[i, j], 3) for j in range(n)] for i, a in enumerate(sources)])
    rep.h2(f"AdaProxy repair of the pairs below {REPAIR_BELOW}")
    if have_adaproxy:
        rep.p(f"Proxy per-block latencies adapted to the target with {k} target samples; SRCC on the other "
              f"{len(archs) - k} sub-networks, mean over {DRAWS} draws of the samples.")
        rep.table(["proxy", "target", "SRCC before", "SRCC after", "worst draw"],
                  [[r["proxy"], r["target"], fmt(r["before"], 3), fmt(r["after"], 3), fmt(r["after_min"], 3)]
                   for r in repairs])
        A = S.copy()
        for r in repairs:
            A[sources.index(r["proxy"]), sources.index(r["target"])] = r["after"]
        fig, axes = p.subplots(1, 2, figsize=(2 * (0.45 * n + 2.5), 0.45 * n + 2), layout="constrained")
        for ax, M, title in ((axes[0], S, "before"), (axes[1], A, f"after AdaProxy ({k} samples)")):
            im = ax.imshow(M, vmin=vmin, vmax=1.0, cmap="viridis")
            ax.set_xticks(range(n))
            ax.set_yticks(range(n))
            ax.set_xticklabels(sources, rotation=90, fontsize=6)
            ax.set_yticklabels(sources, fontsize=6)
            ax.set_xlabel("target")
            ax.set_ylabel("proxy")
            ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=axes, shrink=0.7, label="SRCC")
        rep.figure(fig, "adaproxy_heatmap.png", "SRCC of proxy vs target before and after AdaProxy.")
    else:
        rep.p("Not available in this build (the project's AdaProxy module is missing).")
    rows = [{"arch": i, "r": a["r"], **{s: float(totals[s][i]) for s in sources}} for i, a in enumerate(archs)]
    rep.data("latencies.csv", rows)
    rep.data("summary.json", {"sources": sources, "srcc": {a: {b: S[i, j] for j, b in enumerate(sources)}
                                                          for i, a in enumerate(sources)},
                              "repairs": repairs, "target_samples": k, "archs": archs})
    rep.write(command_line(NAME, quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
