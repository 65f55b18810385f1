"""FLOPs are not latency: networks with exactly equal MACs, scaled in depth or in width, run at
very different speeds, and how much so depends on the hardware.

Each network is a chain of ``depth`` identical 3x3 convolutions with ``width`` input and output
channels on a 14x14 map, so MACs = depth x 9 x width^2 x 196: a family with depth x width^2
fixed has exactly equal MACs (deep-and-narrow at one end, shallow-and-wide at the other).
Latency comes from the analytical cost model on several accelerator presets (each layer mapped
for EDP), the HotNAS model of a ZCU102 FPGA design, and a measurement on this machine's CPU
(PyTorch, one thread).
"""
from __future__ import annotations

import math

from mappings.evaluate import evaluate_network
from models import Layer, Network

from ._common import Report, command_line, fmt, measure_cpu_ms, parse_args, plt, spearman

NAME = "flops_vs_latency"
HW = 14
DEPTHS = (1, 4, 16, 64, 256)
BUDGETS = (2 ** 14, 2 ** 16, 2 ** 18, 2 ** 20)          # depth x width^2 per family
QUICK_DEPTHS = (1, 4, 16, 64)
QUICK_BUDGETS = (2 ** 14, 2 ** 16)
ACCELERATORS = ("eyeriss", "nvdla-256", "shidiannao", "edgetpu", "simba")
QUICK_ACCELERATORS = ("eyeriss", "nvdla-256", "shidiannao")
FPGA = "zcu102-1"


def conv_chain(depth: int, width: int, hw: int = HW) -> Network:
    """``depth`` 3x3 convolutions, ``width`` -> ``width`` channels, stride 1, on an ``hw`` map."""
    return Network(f"d{depth}_w{width}", [Layer.conv(f"conv{i}", width, width, hw, 3) for i in range(depth)])


def fpga_latency_ms(net: Network) -> float:
    from accelerators.fpga import hotnas_network, load_preset
    from accelerators.fpga.hotnas import preset_board

    return hotnas_network(net, load_preset(FPGA), preset_board(FPGA)).latency_ms


def main(argv=None) -> int:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    depths = QUICK_DEPTHS if args.quick else DEPTHS
    budgets = QUICK_BUDGETS if args.quick else BUDGETS
    accs = QUICK_ACCELERATORS if args.quick else ACCELERATORS
    repeats = 5 if args.quick else 30
    backends = [f"sim:{a}" for a in accs] + [f"fpga:{FPGA}", "cpu:torch"]
    rows, nets = [], []
    for budget in budgets:
        for d in depths:
            w = math.isqrt(budget // d)
            if w * w * d != budget or w < 8:
                continue
            net = conv_chain(d, w)
            row = {"family": budget, "depth": d, "width": w, "macs": net.macs, "params": net.params}
            for a in accs:
                row[f"sim:{a}"] = evaluate_network(net, a, optimizer="heuristic", seed=args.seed).total.latency_ms
            row[f"fpga:{FPGA}"] = fpga_latency_ms(net)
            nets.append(net)
            rows.append(row)
    for row, (ms, iqr) in zip(rows, measure_cpu_ms(nets, repeats)):
        row["cpu:torch"], row["cpu:torch_iqr"] = ms, iqr
    macs = [r["macs"] for r in rows]
    srcc = {b: spearman(macs, [r[b] for r in rows]) for b in backends}
    spread = {}  # per backend and family: slowest / fastest latency at equal MACs
    for b in backends:
        spread[b] = {}
        for budget in budgets:
            lat = [r[b] for r in rows if r["family"] == budget]
            spread[b][budget] = max(lat) / min(lat)
    fastest = {b: {budget: min((r for r in rows if r["family"] == budget), key=lambda r: r[b])["depth"]
                   for budget in budgets} for b in backends}

    rep = Report(NAME, "FLOPs are not latency: equal MACs, scaled in depth vs width", args.out, args.quick)
    rep.p(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    worst_b = max(backends, key=lambda b: max(spread[b].values()))
    rep.h2("Headline")
    rep.p(f"At exactly equal MACs the slowest network of a family is up to {fmt(max(spread[worst_b].values()), 3)}x "
          f"slower than the fastest ({worst_b}); across all {len(rows)} networks the rank correlation (SRCC) of MACs "
          f"with latency ranges from {fmt(min(srcc.values()), 3)} ({min(srcc, key=srcc.get)}) to "
          f"{fmt(max(srcc.values()), 3)} ({max(srcc, key=srcc.get)}). Which shape is fastest depends on the "
          "hardware: see the last table.")
    rep.h2("SRCC of MACs vs latency (all networks)")
    rep.table(["latency source", "SRCC(MACs, latency)"] + [f"slowest / fastest, MACs = {fmt(9 * HW * HW * b)}"
                                                           for b in budgets],
              [[b, fmt(srcc[b], 3)] + [fmt(spread[b][k], 3) + "x" for k in budgets] for b in backends])
    rep.h2("Fastest depth at equal MACs")
    rep.table(["latency source"] + [f"MACs = {fmt(9 * HW * HW * b)}" for b in budgets],
              [[b] + [f"depth {fastest[b][k]}" for k in budgets] for b in backends])
    rep.h2("All networks (latency in ms)")
    rep.table(["depth", "width", "MACs", "params"] + backends,
              [[r["depth"], r["width"], r["macs"], r["params"]] + [fmt(r[b]) for b in backends] for r in rows])

    p = plt()
    n = len(backends)
    ncol = min(4, n)
    nrow = math.ceil(n / ncol)
    fig, axes = p.subplots(nrow, ncol, figsize=(3.3 * ncol, 3.0 * nrow), squeeze=False)
    for k, b in enumerate(backends):
        ax = axes[k // ncol][k % ncol]
        for j, budget in enumerate(budgets):
            fam = [r for r in rows if r["family"] == budget]
            ax.plot([r["depth"] for r in fam], [r[b] for r in fam], "o-", ms=3, color=f"C{j}",
                    label=f"{9 * HW * HW * budget / 1e6:.0f} M MACs")
        ax.set_xscale("log", base=4)
        ax.set_xticks(list(depths))
        ax.set_xticklabels([str(d) for d in depths])
        ax.set_yscale("log")
        ax.set_title(f"{b} (SRCC {fmt(srcc[b], 2)})", fontsize=8)
        ax.set_xlabel("depth (width shrinks as 1/sqrt(depth))", fontsize=7)
        ax.set_ylabel("latency (ms)", fontsize=7)
        ax.tick_params(labelsize=6)
    for k in range(n, nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    axes[0][0].legend(fontsize=6)
    rep.figure(fig, "latency_vs_depth.png", "Latency of equal-MAC networks (one line per MAC budget) against depth, "
                                             "per latency source; a flat line would mean MACs predict latency.")
    fig, ax = p.subplots(figsize=(6.4, 4))
    for j, b in enumerate(backends):
        ax.scatter(macs, [r[b] / min(x[b] for x in rows) for r in rows], s=12, color=f"C{j}", label=b, alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MACs")
    ax.set_ylabel("latency / fastest network's latency")
    ax.set_title("MACs vs latency: vertical spread at equal MACs")
    ax.legend(fontsize=6)
    rep.figure(fig, "macs_vs_latency.png", "Every network's latency (normalized per source) against its MACs.")
    rep.data("networks.csv", rows)
    rep.data("summary.json", {"srcc": srcc, "spread": spread, "fastest_depth": fastest, "networks": rows})
    rep.write(command_line(NAME, args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
