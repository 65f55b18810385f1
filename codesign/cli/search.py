"""``codesign search``: the NAAS co-search (accelerator + mappings), or with ``--board`` the same
outer loop over an FPGA template's designs on that board; resumable run directories."""
from __future__ import annotations

import os
import sys
import time

from models.errors import CodesignError

from ._common import emit_json

DEFAULT_WORKLOAD = "mobilenet_v2"
DEFAULT_ENVELOPE = "eyeriss"
DEFAULT_BUDGET = 96  # with only --out: a small search that finishes in about a minute on 2 cores
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))  # the result does not depend on it


def _summary_text(result: dict, run_dir) -> str:
    acc = result["accelerator"]
    arr = " x ".join(f"{d['size']}[{'/'.join(d['loops'])}]" for d in acc["array"])
    lines = [f"found accelerator: {arr}, RF {acc['rf']['capacity_bytes']} B/PE, "
             f"GLB {acc['glb']['capacity_bytes']} B, DRAM {acc['dram']['bw_words_per_cycle']} words/cycle"]
    for w, r in result["ratios"].items():
        f = result["found"]["workloads"][w]["total"]
        lines.append(f"{w}: EDP {f['edp']:.3e} pJ*cycles, {f['latency_ms']:.3f} ms, {f['energy_pj'] / 1e6:.2f} uJ; "
                     f"vs {result['baseline']['accelerator']['name']}: EDP {r['edp_improvement']:.2f}x better, "
                     f"{r['speedup']:.2f}x faster, {r['energy_saving']:.2f}x less energy")
    if "subnet" in result["found"]:
        sub = result["found"]["subnet"]
        lines.insert(1, f"sub-network: predicted accuracy {sub['accuracy']:.4f}, arch {sub['arch']}")
    lines.append(f"run directory: {run_dir} (result.json, report.md, accelerator.yaml)")
    return "\n".join(lines)


def _fpga_summary_text(result: dict, run_dir) -> str:
    b, res = result["board"], result["resources"]
    design = ", ".join(f"{k}={v}" for k, v in result["design"].items() if v is not None)
    lines = [f"found {result['model']} design on {b['name']}: {design}",
             f"resources: DSP {res['dsp']}/{b['dsp']}, BRAM36 {res['bram36']:g}/{b['bram36']}, "
             f"LUT {res['lut']}/{b['lut']}"
             + (f", port bits {res['port_bits']}/{b['mem_port_bits']}" if res["port_bits"] is not None else "")]
    base = result["baseline"]
    for w, f in result["found"]["workloads"].items():
        t = f["total"]
        line = f"{w}: {t['latency_ms']:.3f} ms, {t['energy_mj']:.3f} mJ, EDP {t['edp_j_s']:.3e} J*s"
        if base is not None:
            r = result["ratios"][w]
            line += (f"; vs preset {base['preset']}: EDP {r['edp_improvement']:.2f}x better, "
                     f"{r['speedup']:.2f}x faster, {r['energy_saving']:.2f}x less energy")
        lines.append(line)
    if base is None:
        lines.append(f"no {result['model']} preset of {b['name']} fits these workloads: no baseline")
    lines.append(f"run directory: {run_dir} (result.json, report.md, design.yaml)")
    return "\n".join(lines)


def _fpga_config(args, cfg_kw: dict):
    from accelerators.fpga import load_board
    from codesign.search import SearchConfig

    board = args.board
    if os.path.isfile(board):  # a board YAML: keep a path that a resume from elsewhere still finds
        board = os.path.abspath(board)
    load_board(board)
    return SearchConfig(**cfg_kw, envelope=None, board=board, fpga_model=args.fpga_model or "hotnas")


def _run(args) -> int:
    from codesign.report import write_search_report
    from codesign.search import RunDir, SearchConfig, finalize, make_executor, optimizer_names, run_search

    if args.list_optimizers:
        print("\n".join(optimizer_names()))
        return 0
    if args.resume:
        run = RunDir(args.resume, create=False)
        cfg = SearchConfig.from_dict(run.read_config())
    else:
        if not args.out:
            raise CodesignError("give --out RUN_DIR (or --resume RUN_DIR)")
        if args.board and args.envelope is not None:
            raise CodesignError("--board searches FPGA designs on that board; it cannot be combined with --envelope "
                                "(an ASIC resource envelope)")
        if args.board and args.space:
            raise CodesignError("--board cannot be combined with --space (the sub-network co-search is ASIC only)")
        if args.fpga_model and not args.board:
            raise CodesignError("--fpga-model needs --board (the FPGA board to search on)")
        if args.space and args.workload:
            raise CodesignError("give --workload or --space, not both")
        if args.space:
            from models.predictors import load_predictor
            from models.spaces import get_space
            get_space(args.space)
            load_predictor(args.space)  # the accuracy constraint needs the space's predictor
            if args.min_accuracy is None:
                raise CodesignError("--space needs --min-accuracy (a fraction, e.g. 0.78)")
            if not 0.0 < args.min_accuracy < 1.0:
                raise CodesignError(f"--min-accuracy {args.min_accuracy}: give a fraction between 0 and 1")
        common = dict(workloads=args.workload or ([] if args.space else [DEFAULT_WORKLOAD]),
                      budget=args.budget, optimizer=args.optimizer,
                      seed=args.seed, batch=args.batch, mapper=args.mapper, final_mapper=args.final_mapper,
                      objective=args.objective, resolution=args.resolution)
        if args.board:
            cfg = _fpga_config(args, common)
        else:
            cfg = SearchConfig(**common, envelope=args.envelope or DEFAULT_ENVELOPE, space=args.space,
                               min_accuracy=args.min_accuracy, constraint=args.constraint,
                               population=args.population, generations=args.generations,
                               subnet_mapper=args.subnet_mapper)
        from accelerators import load_accelerator
        from models.importers import load_workload
        if cfg.board is None:
            load_accelerator(cfg.envelope)  # bad input fails before anything is written
        for w in cfg.workloads:
            load_workload(w, resolution=cfg.resolution)
        if cfg.board is not None:
            from codesign.search import search_space
            search_space(cfg)  # the board must hold a design of the template
        run = RunDir(args.out)
        run.write_config(cfg.to_dict())
    t0 = time.perf_counter()
    try:
        with make_executor(args.workers, args.dask) as ex:
            entries = run_search(cfg, run, ex, progress=not args.quiet and sys.stderr.isatty())
    except KeyboardInterrupt:
        print(f"codesign: interrupted; finished evaluations are in {run.journal_path}; "
              f"continue with: codesign search --resume {run.path}", file=sys.stderr)
        return 130
    result = finalize(cfg, run, entries, time.perf_counter() - t0)
    write_search_report(run.path, result)
    if args.json:
        emit_json(result)
    elif cfg.board is not None:
        print(_fpga_summary_text(result, run.path))
    else:
        print(_summary_text(result, run.path))
    return 0


def register(sub) -> None:
    p = sub.add_parser("search", help="co-search an accelerator (and mappings) minimizing EDP in a resource envelope, "
                                      "or an FPGA design on a board (--board)")
    p.add_argument("--workload", action="append", metavar="W",
                   help=f"network to optimize for (repeat for several: geomean EDP); default {DEFAULT_WORKLOAD}")
    p.add_argument("--space", help="OFA search space for the sub-network co-search (e.g. ofa-mbv3)")
    p.add_argument("--min-accuracy", type=float, help="accuracy constraint for --space (predictor units)")
    p.add_argument("--constraint", choices=["hard", "soft"], default="hard", help="accuracy constraint mode")
    p.add_argument("--population", type=int, default=32, help="sub-network search population")
    p.add_argument("--generations", type=int, default=8, help="sub-network search generations")
    p.add_argument("--subnet-mapper", default="heuristic", help="mapper inside the sub-network search")
    p.add_argument("--envelope", help=f"preset whose #PEs, on-chip bytes and bandwidth bound the search "
                                      f"(default {DEFAULT_ENVELOPE})")
    p.add_argument("--board", help="search FPGA designs on this board instead (zcu102, vc707, zc706, ultra96, "
                                   "pynq-z2, or a board YAML); the objective is the FPGA power model's")
    p.add_argument("--fpga-model", choices=["hotnas", "zhang15"],
                   help="FPGA tiling template for --board (default hotnas; zhang15 is fp32)")
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="accelerator candidates to evaluate")
    p.add_argument("--optimizer", default="PortfolioDiscreteOnePlusOne", help="any nevergrad optimizer by name")
    p.add_argument("--list-optimizers", action="store_true", help="print the nevergrad optimizer names and exit")
    p.add_argument("--batch", type=int, default=8, help="candidates asked per round (fixes the result, not the parallelism)")
    p.add_argument("--mapper", default="heuristic", help="mapping optimizer that ranks candidates during the search")
    p.add_argument("--final-mapper", default="auto", help="mapping optimizer for the found accelerator and the baseline")
    p.add_argument("--objective", default="edp", choices=["edp", "energy", "latency"])
    p.add_argument("--resolution", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                   help=f"local worker processes (default {DEFAULT_WORKERS}: the cores, at most 4)")
    p.add_argument("--dask", metavar="ADDRESS", help="Dask scheduler (tcp://host:port, or 'local')")
    p.add_argument("--out", metavar="RUN_DIR")
    p.add_argument("--resume", metavar="RUN_DIR")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
