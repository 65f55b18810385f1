"""Reports of a search run: ``report.md`` with PNG figures beside it (matplotlib, Agg)."""
from __future__ import annotations

import json
from pathlib import Path

from .runs import atomic_write


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_convergence(result: dict, path: Path) -> None:
    plt = _plt()
    conv = result["convergence"]
    xs = [c["i"] for c in conv if c["edp"] is not None]
    ys = [c["edp"] for c in conv if c["edp"] is not None]
    bx = [c["i"] for c in conv if c["best_edp"] is not None]
    by = [c["best_edp"] for c in conv if c["best_edp"] is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.scatter(xs, ys, s=8, alpha=0.4, label="candidate")
    ax.step(bx, by, where="post", color="C3", label="best so far")
    ax.axhline(result["baseline"]["edp_geomean"], color="k", ls="--", lw=1,
               label=f"baseline ({result['baseline']['accelerator']['name']})")
    ax.set_yscale("log")
    ax.set_xlabel("evaluation")
    ax.set_ylabel("EDP (pJ x cycles, geomean over workloads)")
    ax.set_title("NAAS search convergence")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_layer_edp(result: dict, workload: str, path: Path) -> None:
    plt = _plt()
    found = result["found"]["workloads"][workload]["layers"]
    base = result["baseline"]["workloads"][workload]["layers"]
    names = [l["name"] for l in found]
    fig, ax = plt.subplots(figsize=(max(6.4, 0.14 * len(names)), 4))
    idx = range(len(names))
    ax.bar([i - 0.2 for i in idx], [l["edp"] for l in base], width=0.4, label="baseline")
    ax.bar([i + 0.2 for i in idx], [l["edp"] for l in found], width=0.4, label="found")
    ax.set_yscale("log")
    ax.set_ylabel("EDP (pJ x cycles)")
    ax.set_xticks(list(idx))
    ax.set_xticklabels(names, rotation=90, fontsize=5)
    ax.set_title(f"Per-layer EDP: {workload}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_pareto(result: dict, path: Path) -> None:
    plt = _plt()
    front = result["found"]["pareto"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot([c["cost"] for c in front], [c["accuracy"] for c in front], "o-", ms=3, label="Pareto front")
    best = result["found"]["subnet"]
    ax.plot([best["edp"]], [best["accuracy"]], "r*", ms=12, label="chosen")
    acc_min = result["config"].get("min_accuracy")
    if acc_min is not None:
        ax.axhline(acc_min, color="k", ls="--", lw=1, label=f"min accuracy {acc_min}")
    ax.set_xscale("log")
    ax.set_xlabel("EDP on the found accelerator (pJ x cycles)")
    ax.set_ylabel("predicted top-1 accuracy")
    ax.set_title("Accuracy vs EDP (sub-networks evaluated)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_search_report(run_dir, result: dict) -> Path:
    run_dir = Path(run_dir)
    plot_convergence(result, run_dir / "convergence.png")
    acc = result["accelerator"]
    base = result["baseline"]["accelerator"]
    cfg = result["config"]
    what = (f"Space: {cfg['space']} (min accuracy {cfg['min_accuracy']}, {cfg['constraint']} constraint)"
            if cfg.get("space") else f"Workloads: {', '.join(cfg['workloads'])}")
    lines = [
        "# NAAS search report", "",
        f"{what}; envelope: {cfg['envelope']}; optimizer: "
        f"{cfg['optimizer']}; budget: {cfg['budget']}; seed: {cfg['seed']}; mapper: {cfg['mapper']}.",
        f"Evaluations: {result['evaluations']}; wall time {result['seconds']:.1f} s.", "",
        f"**EDP improvement over {base['name']} (geomean): {result['edp_improvement_geomean']:.2f}x**", "",
        "| workload | EDP found | EDP baseline | EDP improvement | speedup | energy saving |",
        "|---|---|---|---|---|---|",
    ]
    for w, r in result["ratios"].items():
        f = result["found"]["workloads"][w]["total"]
        b = result["baseline"]["workloads"][w]["total"]
        lines.append(f"| {w} | {f['edp']:.3e} | {b['edp']:.3e} | {r['edp_improvement']:.2f}x | "
                     f"{r['speedup']:.2f}x | {r['energy_saving']:.2f}x |")
    lines += ["", "## Accelerators", "", "| | found | baseline |", "|---|---|---|"]

    def arr(a):
        return " x ".join(f"{d['size']}[{'/'.join(d['loops'])}]" for d in a["array"])

    def cap(level):
        c = level["capacity_bytes"]
        return sum(c.values()) if isinstance(c, dict) else c

    lines += [f"| array | {arr(acc)} | {arr(base)} |",
              f"| register file per PE (B) | {cap(acc['rf'])} | {cap(base['rf'])} |",
              f"| global buffer (B) | {cap(acc['glb'])} | {cap(base['glb'])} |",
              f"| DRAM bandwidth (words/cycle) | {acc['dram']['bw_words_per_cycle']} | {base['dram']['bw_words_per_cycle']} |",
              "", "## Convergence", "", "![convergence](convergence.png)", ""]
    if "subnet" in result["found"]:
        sub = result["found"]["subnet"]
        plot_pareto(result, run_dir / "pareto.png")
        lines += ["## Sub-network", "", f"Predicted accuracy {sub['accuracy']:.4f}; architecture:", "",
                  "```json", json.dumps(sub["arch"]), "```", "", "![pareto](pareto.png)", ""]
    for w in result["found"]["workloads"]:
        png = f"layers_{w.replace('/', '_')}.png"
        plot_layer_edp(result, w, run_dir / png)
        lines += [f"## Per-layer EDP: {w}", "", f"![{w}]({png})", ""]
    path = run_dir / "report.md"
    atomic_write(path, "\n".join(lines) + "\n")
    return path
