"""``codesign report RUN_DIR``: report.md, a self-contained report.html, report.json and PNG figures."""
from __future__ import annotations

from ._common import emit_json


def _run(args) -> int:
    from codesign.report import write_report

    data = write_report(args.run_dir)
    if args.json:
        emit_json(data)
    elif data.get("kind") == "subnet-latency":
        b = data["best"]
        value = f"{b['accuracy']:.6g}" if data["accuracy_label"].endswith(" score") else f"{b['accuracy']:.4f}"
        print(f"chosen sub-network of {data['space']} ({data['strategy']} search): {data['accuracy_label']} "
              f"{value} at {b['latency_ms']:.3f} ms on {data['latency']} (target {data['target_ms']:g} ms)")
        if data.get("truth"):
            t = data["truth"]
            print(f"measured on {t['latency']}: {b['true_latency_ms']:.3f} ms "
                  f"({'meets' if b['meets_target'] else 'violates'} the target); accuracy gap to the best cell "
                  f"within it: " + (f"{t['accuracy_gap']:.4f}" if t["accuracy_gap"] is not None else "none meets it"))
        if data.get("verified"):
            from codesign.search.nb201_latency import verified_text
            print(verified_text(data["verified"]))
        print("wrote " + ", ".join(data["files"]))
    elif data.get("kind") == "subnet":
        b = data["best"]
        print(f"chosen sub-network of {data['space']}: {data['accuracy_label']} {b['accuracy']:.4f}, "
              f"peak SRAM {b['peak_sram_kb']:.1f} kB, Flash {b['flash_kb']:.1f} kB")
        print("wrote " + ", ".join(data["files"]))
    else:
        s = data["summary"]
        if s["edp_improvement_geomean"] is None:  # an FPGA run on a board without a fitting preset
            print("no baseline: no preset of the board fits the workloads")
        else:
            print(f"EDP improvement over {data['accelerators']['baseline']['name']} (geomean): "
                  f"{s['edp_improvement_geomean']:.2f}x")
        print("wrote " + ", ".join(data["files"]))
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="write the report of a finished search run (Markdown, HTML, PNG figures)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by 'codesign search --out'")
    p.add_argument("--json", action="store_true", help="print every number of the report as JSON")
    p.set_defaults(func=_run)
