"""``codesign search``: the NAAS co-search (accelerator + mappings), or with ``--board`` the same
outer loop over an FPGA template's designs on that board; resumable run directories.

With ``--space`` the mid loop searches sub-networks under an accuracy constraint and, with
``--max-sram`` / ``--max-flash`` / ``--mcu``, under hard memory limits (peak activation SRAM and
weight Flash, int8); ``--objective accuracy`` runs that sub-network search alone, with no
accelerator: the most accurate sub-network that fits (TinyNAS style)."""
from __future__ import annotations

import argparse
import functools
import os
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager

from accelerators.mcu import MAX_FLASH_KB, MAX_SRAM_KB
from codesign.search.run_schema import (ACCURACY_SOURCES, MAX_BATCH, MAX_BUDGET, MAX_GENERATIONS, MAX_LATENCY_MS,
                                        MAX_VERIFY, OFA_LATENCY_SOURCE, MAX_POPULATION, MAX_RESOLUTION, SUBNET_OBJECTIVE, SUBNET_STRATEGIES,
                                        RunDirError)
from mappings.optimizers import OPTIMIZERS
from models.errors import CodesignError

from ._common import MAX_WORKERS, emit_json, float_in, int_in, seed_arg

DEFAULT_WORKLOAD = "mobilenet_v2"
DEFAULT_ENVELOPE = "eyeriss"
DEFAULT_BUDGET = 96  # with only --out: a small search that finishes in about a minute on 2 cores
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))  # the result does not depend on it

# options saved in config.yaml (dest -> config key) and their defaults for a new run; every one
# defaults to None in the parser so that a resume can tell which were given
CONFIG_OPTIONS = {"workload": "workloads", "space": "space", "min_accuracy": "min_accuracy",
                  "constraint": "constraint", "population": "population", "generations": "generations",
                  "subnet_mapper": "subnet_mapper", "envelope": "envelope", "board": "board",
                  "fpga_model": "fpga_model", "budget": "budget", "optimizer": "optimizer", "batch": "batch",
                  "mapper": "mapper", "final_mapper": "final_mapper", "objective": "objective",
                  "resolution": "resolution", "seed": "seed", "schedule": "schedule", "accuracy": "accuracy",
                  "max_sram": "max_sram_kb", "max_flash": "max_flash_kb", "mcu": "mcu",
                  "sram_schedule": "sram_schedule", "strategy": "strategy", "max_latency": "max_latency_ms",
                  "latency_source": "latency", "verify": "verify"}
DEFAULTS = {"constraint": "hard", "population": 32, "generations": 8, "subnet_mapper": "heuristic",
            "budget": DEFAULT_BUDGET, "optimizer": "PortfolioDiscreteOnePlusOne", "batch": 8,
            "mapper": "heuristic", "final_mapper": "auto", "objective": "edp", "seed": 0, "schedule": "layer",
            "accuracy": "predictor", "sram_schedule": "layer", "strategy": "evolution"}
SUBNET_OPTIONS = ("min_accuracy", "constraint", "population", "generations", "subnet_mapper", "accuracy",
                  "max_sram", "max_flash", "mcu", "sram_schedule", "strategy", "max_latency", "latency_source")
DEFAULT_LATENCY_SOURCE = "lut:note10"
# options of the accelerator search: they do not apply to the sub-network search alone
ACCELERATOR_OPTIONS = ("envelope", "board", "fpga_model", "budget", "optimizer", "batch", "mapper", "final_mapper",
                       "subnet_mapper", "constraint", "schedule", "workers", "dask")


def _summary_text(result: dict, run_dir) -> str:
    acc = result["accelerator"]
    arr = " x ".join(f"{d['size']}[{'/'.join(d['loops'])}]" for d in acc["array"])
    lines = [f"found accelerator: {arr}, RF {acc['rf']['capacity_bytes']} B/PE, "
             f"GLB {acc['glb']['capacity_bytes']} B, DRAM {acc['dram']['bw_words_per_cycle']} words/cycle"]
    base_name = result["baseline"]["accelerator"]["name"]
    vs_lbl = result.get("ratios_vs_layer_by_layer_baseline", {})
    for w, r in result["ratios"].items():
        f = result["found"]["workloads"][w]["total"]
        fused = " (fused)" if f.get("schedule") == "fused" else ""
        lines.append(f"{w}: EDP {f['edp']:.3e} pJ*cycles, {f['latency_ms']:.3f} ms, {f['energy_pj'] / 1e6:.2f} uJ; "
                     f"vs {base_name}{fused}: EDP {r['edp_improvement']:.2f}x better, "
                     f"{r['speedup']:.2f}x faster, {r['energy_saving']:.2f}x less energy")
        if w in vs_lbl:
            v = vs_lbl[w]
            lines.append(f"{' ' * len(w)}  vs {base_name} layer by layer: EDP {v['edp_improvement']:.2f}x better, "
                         f"{v['speedup']:.2f}x faster, {v['energy_saving']:.2f}x less energy")
    if "subnet" in result["found"]:
        sub = result["found"]["subnet"]
        what = "measured accuracy" if result["config"].get("accuracy") == "table" else "predicted accuracy"
        lines.insert(1, f"sub-network: {what} {sub['accuracy']:.4f}, arch {sub['arch']}")
        if "memory" in sub:
            m = sub["memory"]
            lines.insert(2, f"sub-network memory: peak SRAM {m['peak_sram_bytes'] / 1024:.1f} kB"
                            + (f" (first {m['patch_layers']:g} layers in 4x4 patches)" if m["patch_layers"] else "")
                            + f", Flash {m['flash_bytes'] / 1024:.1f} kB (int8)")
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


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _fraction(text: str) -> float:
    v = float_in(0.0, 1.0, lo_open=True)(text)
    if v >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number > 0 and < 1, got {text!r}")
    return v


class _Workloads(argparse.Action):
    """``--workload`` repeats to name several networks; the same one twice is an error."""

    def __call__(self, parser, namespace, values, option_string=None):
        have = list(getattr(namespace, self.dest, None) or [])
        if values in have:
            raise argparse.ArgumentError(self, f"{values!r} given twice")
        setattr(namespace, self.dest, have + [values])


def _given(args) -> dict:
    """The config options given on the command line (normalized as the config saves them)."""
    out = {}
    for dest, key in CONFIG_OPTIONS.items():
        v = getattr(args, dest)
        if v is None:
            continue
        if dest == "board" and os.path.isfile(v):  # a board YAML: saved as an absolute path
            v = os.path.abspath(v)
        out[key] = v
    return out


def _check_resume_options(args, cfg, run) -> None:
    saved = {"schedule": "layer", "accuracy": "predictor", "sram_schedule": "layer", "strategy": "evolution",
             "verify": 0, **cfg.to_dict()}
    given = _given(args)
    if "mcu" in given:
        from accelerators.mcu import load_mcu
        given["mcu"] = load_mcu(given["mcu"]).key
    clash = [f"{_flag(d)} {getattr(args, d)!r} (the run has {saved.get(k)!r})"
             for d, k in CONFIG_OPTIONS.items() if k in given and given[k] != saved.get(k)]
    if clash:
        raise RunDirError(f"--resume {run.path}: {'; '.join(clash)}: a resumed run keeps its saved options; "
                          f"drop {'it' if len(clash) == 1 else 'them'}, or start a new run with --out")


def _fpga_config(args, cfg_kw: dict):
    from accelerators.fpga import load_board
    from codesign.search import SearchConfig

    board = args.board
    if os.path.isfile(board):  # a board YAML: keep a path that a resume from elsewhere still finds
        board = os.path.abspath(board)
    load_board(board)
    return SearchConfig(**cfg_kw, envelope=None, board=board, fpga_model=args.fpga_model or "hotnas")


def _new_config(args):
    """The config of a new run from the options (defaults filled), every input checked."""
    from codesign.search import SearchConfig

    if not args.out:
        raise CodesignError("give --out RUN_DIR (or --resume RUN_DIR)")
    _check_verify(args)
    if args.objective == SUBNET_OBJECTIVE:
        return _subnet_config(args)
    latency = [_flag(d) for d in ("max_latency", "strategy", "latency_source") if getattr(args, d) is not None]
    if latency:
        raise CodesignError(f"{', '.join(latency)}: the sub-network search alone under a latency target: it needs "
                            f"--objective accuracy (and --space ofa-mbv3 or nasbench201)")
    if args.board and args.envelope is not None:
        raise CodesignError("--board searches FPGA designs on that board; it cannot be combined with --envelope "
                            "(an ASIC resource envelope)")
    if args.board and args.space:
        raise CodesignError("--board cannot be combined with --space (the sub-network co-search is ASIC only)")
    if args.fpga_model and not args.board:
        raise CodesignError("--fpga-model needs --board (the FPGA board to search on)")
    if args.space and args.workload:
        raise CodesignError("give --workload or --space, not both")
    if args.schedule == "fused" and args.board:
        raise CodesignError("--schedule fused costs every candidate under its searched depth-first schedule; it "
                            "works on an --envelope (with --workload or --space), not with --board")
    if not args.space:
        extra = [_flag(d) for d in SUBNET_OPTIONS if getattr(args, d) is not None]
        if extra:
            raise CodesignError(f"{', '.join(extra)}: option{'s' if len(extra) > 1 else ''} of the sub-network "
                                f"co-search: {'they need' if len(extra) > 1 else 'it needs'} --space")
    if args.sram_schedule is not None and not any(getattr(args, d) is not None for d in ("max_sram", "mcu")):
        raise CodesignError("--sram-schedule: the schedule the peak-SRAM limit is computed under: it needs "
                            "--max-sram or --mcu")
    opt = {d: getattr(args, d) if getattr(args, d) is not None else DEFAULTS.get(d) for d in CONFIG_OPTIONS}
    if args.space:
        from codesign.search.outer_loop import is_proxy, load_accuracy
        if is_proxy(opt["accuracy"]):
            raise CodesignError(f"--accuracy {opt['accuracy']}: a zero-cost proxy's score is not an accuracy "
                                f"fraction, so --min-accuracy cannot bound it; search with it alone: "
                                f"--objective accuracy (the highest score within the memory limits)")
        load_accuracy(args.space, opt["accuracy"])  # the accuracy constraint needs it
        if args.min_accuracy is None:
            raise CodesignError("--space needs --min-accuracy (a fraction, e.g. 0.78)")
    common = dict(workloads=args.workload or ([] if args.space else [DEFAULT_WORKLOAD]),
                  **{k: opt[k] for k in ("budget", "optimizer", "seed", "batch", "mapper", "final_mapper",
                                         "objective", "resolution")})
    if args.board:
        cfg = _fpga_config(args, common)
    else:
        cfg = SearchConfig(**common, envelope=args.envelope or DEFAULT_ENVELOPE, space=args.space,
                           schedule=opt["schedule"],
                           min_accuracy=args.min_accuracy, accuracy=opt["accuracy"], **_memory_limits(args),
                           **{k: opt[k] for k in ("constraint", "population", "generations", "subnet_mapper")})
    from accelerators import load_accelerator
    from codesign.search.outer_loop import check_optimizer
    from models.importers import load_workload
    check_optimizer(cfg.optimizer)
    if cfg.board is None:
        load_accelerator(cfg.envelope)  # bad input fails before anything is written
    for w in cfg.workloads:
        net = load_workload(w, resolution=cfg.resolution)
        if cfg.schedule == "fused":
            from accelerators.schedule import flow
            flow(net)  # fused stacks need the graph edges
    if cfg.board is not None:
        from codesign.search import search_space
        search_space(cfg)  # the board must hold a design of the template
    if cfg.space:
        from codesign.search.outer_loop import check_subnet_feasible
        check_subnet_feasible(cfg)  # an accuracy or memory limit nothing meets fails before the run starts
    return cfg.with_input_hashes()


def _check_verify(args) -> None:
    """``--verify K`` (K > 0) measures front cells of the nasbench201 search under a latency target
    on the target: anywhere else it is one error."""
    if not args.verify:
        return
    from codesign.validation.nb201_latency import DEFAULT_SOURCE, is_nb201_source
    from models.spaces import get_space

    source = args.latency_source or DEFAULT_SOURCE
    if args.objective != SUBNET_OBJECTIVE or not args.space or get_space(args.space).name != "nasbench201":
        why = "a search of another kind"
    elif args.max_latency is None:
        why = "no --max-latency"
    elif not is_nb201_source(source):
        why = f"--latency-source {source} (not a nasbench201 latency)"
    else:
        return
    raise CodesignError(f"--verify {args.verify} measures the most accurate cells of a nasbench201 search under a "
                        f"latency target on the target; with {why} it does not apply: it needs --space nasbench201 "
                        f"--objective accuracy --max-latency MS and a pi5: or adaproxy: --latency-source")


def _memory_limits(args) -> dict:
    """``max_sram_kb``, ``max_flash_kb``, ``sram_schedule`` and ``mcu`` of the config: ``--mcu`` sets
    both limits from the board; ``--max-sram`` / ``--max-flash`` replace the board's."""
    out = {"max_sram_kb": args.max_sram, "max_flash_kb": args.max_flash, "mcu": None,
           "sram_schedule": args.sram_schedule or DEFAULTS["sram_schedule"]}
    if args.mcu is not None:
        from accelerators.mcu import load_mcu
        board = load_mcu(args.mcu)
        out["mcu"] = board.key
        if args.max_sram is None:
            out["max_sram_kb"] = board.sram_kb
        if args.max_flash is None:
            out["max_flash_kb"] = board.flash_kb
    return out


def _subnet_config(args):
    """The config of a sub-network search alone (``--objective accuracy``), every input checked."""
    from codesign.search import SearchConfig
    from codesign.search.outer_loop import check_subnet_feasible, load_accuracy

    if not args.space:
        raise CodesignError("--objective accuracy searches the sub-networks of a --space (the most accurate one "
                            "within --max-sram / --max-flash / --mcu): give --space")
    if args.workload:
        raise CodesignError("--objective accuracy searches the sub-networks of --space; --workload does not apply")
    extra = [_flag(d) for d in ACCELERATOR_OPTIONS if getattr(args, d) is not None]
    if extra:
        raise CodesignError(f"--objective accuracy searches sub-networks alone, with no accelerator: "
                            f"{', '.join(extra)} {'do' if len(extra) > 1 else 'does'} not apply")
    if args.latency_source is not None:
        from codesign.validation.nb201_latency import is_nb201_source
        from models.spaces import get_space
        if is_nb201_source(args.latency_source) and get_space(args.space).name != "nasbench201":
            raise CodesignError(f"--latency-source {args.latency_source}: a latency of nasbench201 cells (the Raspberry "
                                f"Pi 5 table): it needs --space nasbench201 (--accuracy table)")
    limits = _memory_limits(args)  # a bad board name is reported before any asset is loaded
    load_accuracy(args.space, args.accuracy or DEFAULTS["accuracy"])
    from codesign.search.outer_loop import is_proxy
    if args.min_accuracy is not None and is_proxy(args.accuracy or ""):
        raise CodesignError(f"--min-accuracy bounds an accuracy fraction; --accuracy {args.accuracy} gives a "
                            f"zero-cost proxy's score: drop --min-accuracy")
    kw = dict(workloads=[], envelope=None, space=args.space, objective=SUBNET_OBJECTIVE,
              min_accuracy=args.min_accuracy, accuracy=args.accuracy or DEFAULTS["accuracy"],
              population=args.population or DEFAULTS["population"],
              generations=args.generations if args.generations is not None else DEFAULTS["generations"],
              seed=args.seed if args.seed is not None else DEFAULTS["seed"], resolution=args.resolution)
    if args.max_latency is not None or args.strategy is not None or args.latency_source is not None:
        return _latency_target_config(args, kw)
    cfg = SearchConfig(**kw, **limits)
    check_subnet_feasible(cfg)  # nothing that fits: one error before the run directory is made
    return cfg


def _latency_target_config(args, kw: dict):
    """The config of the sub-network search alone under a latency target (``--max-latency``)."""
    from codesign.search import SearchConfig
    from codesign.search.differentiable import check_target

    if args.max_latency is None:
        raise CodesignError("--strategy and --latency-source search under a latency target: give --max-latency MS")
    extra = [_flag(d) for d in ("max_sram", "max_flash", "mcu", "sram_schedule", "min_accuracy", "resolution")
             if getattr(args, d) is not None]
    if extra:
        raise CodesignError(f"--max-latency (the most accurate sub-network within a latency target) cannot be "
                            f"combined with {', '.join(extra)}")
    from models.spaces import get_space
    space = get_space(args.space).name
    if space == "nasbench201":
        return _nb201_latency_config(args, kw)
    if (args.accuracy or "predictor") != "predictor" or space != "ofa-mbv3":
        raise CodesignError("--max-latency searches the ofa-mbv3 space with its accuracy predictor "
                            "(the per-operator latency tables cover that space), or nasbench201 with --accuracy table")
    source = args.latency_source or DEFAULT_LATENCY_SOURCE
    if not re.match(OFA_LATENCY_SOURCE, source):
        raise CodesignError(f"--latency-source {source!r}: give {DEFAULT_LATENCY_SOURCE} or analytical:ACCELERATOR "
                            f"(a preset name, e.g. analytical:eyeriss)")
    cfg = SearchConfig(**kw, strategy=args.strategy or DEFAULTS["strategy"], max_latency_ms=args.max_latency,
                       latency=source)
    check_target(_latency_table(cfg.space, cfg.latency), cfg.max_latency_ms)  # one error before the run directory
    return cfg


def _nb201_latency_config(args, kw: dict):
    """The config of the nasbench201 search under a latency target: the measured Pi 5 latency
    (``pi5:RUNTIME``) or AdaProxy's prediction of it (``adaproxy:TARGET:PROXY[:N]``)."""
    from codesign.search import SearchConfig
    from codesign.search.nb201_latency import check_target
    from codesign.validation.nb201_latency import DEFAULT_SOURCE, latency_source, parse_source

    if args.strategy == "differentiable":
        raise CodesignError("--strategy differentiable relaxes the ofa-mbv3 choices; nasbench201 is searched by "
                            "evolution (its cells are tabulated): drop --strategy")
    source = parse_source(args.latency_source or DEFAULT_SOURCE).text  # one error line for a malformed one
    cfg = SearchConfig(**kw, strategy="evolution", max_latency_ms=args.max_latency, latency=source,
                       verify=args.verify or 0)
    check_target(latency_source(source, cfg.seed), cfg.max_latency_ms)  # one error before the run directory
    return cfg


@functools.lru_cache(maxsize=4)
def _latency_table(space: str, source: str):
    """The per-slot latency table of ``space`` from ``source`` (``lut:note10`` or
    ``analytical:<accelerator>``), built once per process."""
    from codesign.search.differentiable import analytical_table, lut_table

    if source.startswith("analytical:"):
        return analytical_table(source.split(":", 1)[1], space, "latency")
    from codesign.validation.latency import get_backend
    return lut_table(get_backend(source), space)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: workers stopped, the journal kept, a hint to resume."""


class _Signals:
    """The signal that interrupted the search, if any (``None`` until one arrives)."""
    signum = None


@contextmanager
def _sigterm_interrupts():
    """SIGTERM and SIGINT raise ``KeyboardInterrupt`` (``Terminated``) while the search runs.

    The received signal is also recorded: a library may catch the ``KeyboardInterrupt`` and raise
    another exception in its place (numpy turns it into a ``TypeError`` inside a structured-array
    comparison), and :func:`_interrupted` still sees it as an interrupt."""
    got = _Signals()
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def on_term(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up
        got.signum = signum
        raise Terminated()

    def on_int(signum, frame):
        got.signum = signum
        raise KeyboardInterrupt()

    # SIGINT interrupts even where the shell started the search with it ignored (a background
    # job of a script inherits SIG_IGN), as the board agent does
    old = {signal.SIGTERM: signal.signal(signal.SIGTERM, on_term),
           signal.SIGINT: signal.signal(signal.SIGINT, on_int)}
    try:
        yield got
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _interrupted(e: BaseException, got: _Signals):
    """The exit status for an exception raised while the search ran: 130 (SIGINT) or 143 (SIGTERM)
    when a signal caused it, ``None`` for any other error."""
    if isinstance(e, Terminated) or got.signum == signal.SIGTERM:
        return 128 + signal.SIGTERM
    if isinstance(e, KeyboardInterrupt) or got.signum == signal.SIGINT:
        return 130
    return None


def _interrupt_exit(e: BaseException, got: _Signals, hint: str) -> int:
    """The exit status of a search that ``e`` ended: re-raises ``e`` unless a signal caused it,
    else prints ``hint`` (what was kept, how to go on) and returns 130 or 143."""
    rc = _interrupted(e, got)
    if rc is None:
        raise e
    print(f"codesign: interrupted; {hint}", file=sys.stderr)
    return rc


def _search(args, cfg, run) -> int:
    if cfg.objective == SUBNET_OBJECTIVE:
        return _search_subnet(args, cfg, run)
    from codesign.report import write_search_report
    from codesign.search import finalize, make_executor, run_search

    def warn(message: str) -> None:
        print(f"codesign: warning: {message}", file=sys.stderr)

    t0 = time.perf_counter()
    got = _Signals()
    try:
        with _sigterm_interrupts() as got:
            with make_executor(args.workers or DEFAULT_WORKERS, args.dask) as ex:
                entries = run_search(cfg, run, ex, progress=not args.quiet and sys.stderr.isatty(), warn=warn)
            result = finalize(cfg, run, entries, time.perf_counter() - t0)
            write_search_report(run.path, result)
    except BaseException as e:
        return _interrupt_exit(e, got, f"finished evaluations are in {run.journal_path}; "
                                       f"continue with: codesign search --resume {run.path}")
    if args.json:
        emit_json(result)
    elif cfg.board is not None:
        print(_fpga_summary_text(result, run.path))
    else:
        print(_summary_text(result, run.path))
    return 0


def _search_subnet(args, cfg, run) -> int:
    """The sub-network search alone: ``result.json``, ``report.md`` and ``pareto.png`` in the run."""
    from codesign.search.outer_loop import search_subnet

    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(total=cfg.generations, desc="sub-networks", unit="gen", dynamic_ncols=True)

    def progress(gen, best):
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"best accuracy {best.accuracy:.4f}")

    got = _Signals()
    try:
        with _sigterm_interrupts() as got:
            from codesign.validation.nb201_latency import is_nb201_source, latency_source
            if cfg.max_latency_ms is not None and is_nb201_source(cfg.latency):
                from codesign.search.nb201_latency import search_latency_target
                result = search_latency_target(cfg, latency_source(cfg.latency, cfg.seed))
            elif cfg.max_latency_ms is not None:
                from codesign.search.differentiable import search_latency_target
                result = search_latency_target(cfg, _latency_table(cfg.space, cfg.latency))
            else:
                result = search_subnet(cfg, progress=progress)
    except BaseException as e:
        return _interrupt_exit(e, got, f"the sub-network search keeps no journal (it takes seconds to minutes): "
                                       f"run it again with: codesign search --resume {run.path}")
    finally:
        if bar is not None:
            bar.close()
    run.write_json("result.json", result)
    from codesign.report import write_report
    write_report(run.path, result)
    if args.json:
        emit_json(result)
    elif result["kind"] == "subnet-latency":
        b = result["best"]
        from codesign.report import subnet_accuracy_label
        what = subnet_accuracy_label(result)
        value = f"{b['accuracy']:.4f}" if cfg.accuracy in ACCURACY_SOURCES else f"{b['accuracy']:.6g}"
        truth = ""
        if result.get("truth"):
            t = result["truth"]
            opt = t["optimum"]
            truth = (f"\nmeasured on {t['latency']}: {b['true_latency_ms']:.3f} ms "
                     f"({'meets' if b['meets_target'] else 'VIOLATES'} the target), accuracy {b['true_accuracy']:.4f}; "
                     + (f"the best cell within the target: {opt['accuracy']:.4f} at {opt['latency_ms']:.3f} ms "
                        f"(gap {t['accuracy_gap']:.4f})" if opt else "no cell meets the target on it"))
        kept = ""
        if result.get("verified"):  # --verify K: the answer is the kept cell
            from codesign.search.nb201_latency import verified_text
            kept = "\n" + verified_text(result["verified"])
        print(f"the most accurate sub-network of {result['space']} within {result['target_ms']:g} ms on "
              f"{result['latency']} ({result['strategy']} search): {what} {value} at "
              f"{b['latency_ms']:.3f} ms{truth}\narch {b['arch']}{kept}\n{result['evaluations']} sub-networks scored in "
              f"{result['seconds']:.1f} s; run directory: {run.path} (result.json, report.md, report.html, "
              f"trajectory.png, front.png)")
    else:
        print(_subnet_summary_text(result, run.path))
    return 0


def _subnet_summary_text(result: dict, run_dir) -> str:
    from codesign.report import subnet_accuracy_label, subnet_limits_text

    b = result["best"]
    value = f"{b['accuracy']:.4f}" if result["config"].get("accuracy", "predictor") in ACCURACY_SOURCES \
        else f"{b['accuracy']:.6g}"
    lines = [f"the sub-network of {result['space']} with the highest {subnet_accuracy_label(result)} within "
             f"{subnet_limits_text(result)}: "
             f"{value}",
             f"peak SRAM {b['peak_sram_kb']:.1f} kB"
             + (f" (first {b['patch_layers']} layers in 4x4 patches)" if b["patch_layers"] else " (layer by layer)")
             + f", Flash {b['flash_kb']:.1f} kB, {b['macs'] / 1e6:.1f} M MACs",
             f"arch {b['arch']}",
             f"{result['evaluated']} sub-networks evaluated in {result['seconds']:.1f} s; run directory: {run_dir} "
             f"(result.json, report.md, report.html, pareto.png)"]
    return "\n".join(lines)


def _run(args) -> int:
    from codesign.search import RunDir, SearchConfig, optimizer_names
    from codesign.search.outer_loop import check_resumable

    if args.list_optimizers:
        names = optimizer_names()
        if args.json:
            emit_json(names)
        else:
            print("\n".join(names))
        return 0
    if args.resume:
        if args.out:
            raise CodesignError("give --out RUN_DIR (a new run) or --resume RUN_DIR (continue one), not both")
        run = RunDir(args.resume, create=False)
        with run.lock():
            cfg = SearchConfig.from_dict(run.read_config(), str(run.config_path))
            _check_resume_options(args, cfg, run)
            check_resumable(cfg, str(run.path))
            return _search(args, cfg, run)
    cfg = _new_config(args)
    run = RunDir(args.out)
    with run.lock():
        run.write_config(cfg.to_dict())
        return _search(args, cfg, run)


def register(sub) -> None:
    p = sub.add_parser("search", help="co-search an accelerator (and mappings) minimizing EDP in a resource envelope, "
                                      "or an FPGA design on a board (--board)")
    unset = dict(default=None)  # defaults are filled in after parsing; the parser refuses an option given twice
    p.add_argument("--workload", action=_Workloads, metavar="W",
                   help=f"network to optimize for (repeat for several: geomean EDP); default {DEFAULT_WORKLOAD}")
    p.add_argument("--space", **unset, help="OFA search space for the sub-network co-search (e.g. ofa-mbv3)")
    p.add_argument("--min-accuracy", type=_fraction, **unset,
                   help="accuracy constraint for --space (predictor units: a fraction > 0 and < 1)")
    p.add_argument("--constraint", choices=["hard", "soft"], **unset, help="accuracy constraint mode (default hard)")
    p.add_argument("--population", type=int_in(1, MAX_POPULATION), **unset,
                   help=f"sub-network search population (default 32, at most {MAX_POPULATION})")
    p.add_argument("--generations", type=int_in(0, MAX_GENERATIONS), **unset,
                   help=f"sub-network search generations (default 8, at most {MAX_GENERATIONS})")
    p.add_argument("--subnet-mapper", **unset, choices=OPTIMIZERS, help="mapper inside the sub-network search (default heuristic)")
    p.add_argument("--accuracy", metavar="SOURCE", **unset,
                   help=f"accuracy of a sub-network: the space's predictor (default), 'table': the measured "
                        f"CIFAR-100 accuracy of every nasbench201 cell, or a zero-cost proxy's score (nasbench201, "
                        f"with --objective accuracy; see models/proxies.py) ({', '.join(ACCURACY_SOURCES)}, PROXY)")
    p.add_argument("--max-sram", type=float_in(0, MAX_SRAM_KB, lo_open=True), metavar="kB", **unset,
                   help="hard limit on a sub-network's peak activation SRAM (int8, kB = 1024 bytes)")
    p.add_argument("--max-flash", type=float_in(0, MAX_FLASH_KB, lo_open=True), metavar="kB", **unset,
                   help="hard limit on a sub-network's weights in Flash (int8, kB)")
    p.add_argument("--mcu", metavar="BOARD", **unset,
                   help="microcontroller whose SRAM and Flash are the limits (e.g. stm32f746, stm32f412, stm32h743; "
                        "--max-sram / --max-flash replace either)")
    p.add_argument("--sram-schedule", choices=["layer", "patch"], **unset,
                   help="peak SRAM layer by layer (default) or with the best patch-based first stage (4x4 patches)")
    p.add_argument("--max-latency", type=float_in(0, MAX_LATENCY_MS, lo_open=True), metavar="MS", **unset,
                   help="with --objective accuracy (ofa-mbv3, or nasbench201 with --accuracy table): the most "
                        "accurate sub-network whose latency is at most MS (see docs/differentiable.md, docs/nb201.md)")
    p.add_argument("--strategy", choices=SUBNET_STRATEGIES, **unset,
                   help="how --max-latency searches: evolution (default) or differentiable (relaxed choices, "
                        "expected latency, the predictor as accuracy; then a discrete polish)")
    p.add_argument("--latency-source", metavar="SPEC", **unset,
                   help=f"latency of --max-latency: ofa-mbv3: {DEFAULT_LATENCY_SOURCE} (default; per-operator phone "
                        f"tables) or analytical:ACCELERATOR (the cost model, e.g. analytical:eyeriss); nasbench201: "
                        f"pi5:RUNTIME (default pi5:litert; the measured Raspberry Pi 5 latency, RUNTIME litert, onnx "
                        f"or torchmobile) or adaproxy:TARGET:PROXY[:N] (Pi 5 runtime TARGET predicted by AdaProxy from "
                        f"a proxy device, e.g. rice_pixel3, adapted with N target cells, default 30)")
    p.add_argument("--verify", type=int_in(0, MAX_VERIFY), metavar="K", **unset,
                   help="nasbench201 with --max-latency: after the search, measure the K most accurate cells of its "
                        "front on the target (the table's Pi 5 latency of the source's runtime) and keep the most "
                        "accurate one that meets it (default 0: off; see docs/nb201.md)")
    p.add_argument("--envelope", **unset, help=f"preset whose #PEs, on-chip bytes and bandwidth bound the search "
                                              f"(default {DEFAULT_ENVELOPE})")
    p.add_argument("--board", **unset, help="search FPGA designs on this board instead (zcu102, vc707, zc706, "
                                           "ultra96, pynq-z2, or a board YAML); the objective is the FPGA power "
                                           "model's")
    p.add_argument("--fpga-model", choices=["hotnas", "zhang15"], **unset,
                   help="FPGA tiling template for --board (default hotnas; zhang15 is fp32)")
    p.add_argument("--budget", type=int_in(1, MAX_BUDGET), **unset,
                   help=f"accelerator candidates to evaluate (default {DEFAULT_BUDGET}, at most {MAX_BUDGET:,})")
    p.add_argument("--optimizer", **unset, help="any nevergrad optimizer by name (default PortfolioDiscreteOnePlusOne)")
    p.add_argument("--list-optimizers", action="store_true", help="print the nevergrad optimizer names and exit")
    p.add_argument("--batch", type=int_in(1, MAX_BATCH), **unset,
                   help=f"candidates asked per round (fixes the result, not the parallelism; default 8, "
                        f"at most {MAX_BATCH})")
    p.add_argument("--mapper", **unset, choices=OPTIMIZERS, help="mapping optimizer that ranks candidates during the search "
                                            "(default heuristic)")
    p.add_argument("--final-mapper", **unset, choices=OPTIMIZERS, help="mapping optimizer for the found accelerator and the baseline "
                                                  "(default auto)")
    p.add_argument("--objective", choices=["edp", "energy", "latency", SUBNET_OBJECTIVE], **unset,
                   help="default edp; 'accuracy' (with --space): the sub-network search alone, no accelerator: the "
                        "highest predicted accuracy within the memory limits")
    p.add_argument("--resolution", type=int_in(1, MAX_RESOLUTION), **unset,
                   help=f"input resolution of zoo networks (pixels, at most {MAX_RESOLUTION})")
    p.add_argument("--seed", type=seed_arg(), **unset, help="default 0")
    p.add_argument("--schedule", choices=["layer", "fused"], **unset,
                   help="cost every candidate layer by layer (default) or under its searched depth-first "
                        "schedule (fused stacks; see docs/schedule.md)")
    p.add_argument("--workers", type=int_in(1, MAX_WORKERS), **unset,
                   help=f"local worker processes (default {DEFAULT_WORKERS}: the cores, at most 4)")
    p.add_argument("--dask", metavar="ADDRESS", **unset, help="Dask scheduler (tcp://host:port, or 'local')")
    p.add_argument("--out", metavar="RUN_DIR", **unset)
    p.add_argument("--resume", metavar="RUN_DIR", **unset)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
