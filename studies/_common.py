"""Shared by the studies: command line (``--quick``), output folder, and a small report writer
(Markdown with PNG figures beside it, data as JSON and CSV)."""
from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

from codesign.report import fmt  # noqa: F401  (the studies print numbers as the reports do)

OUT_ROOT = Path(__file__).resolve().parent / "out"
_START = time.perf_counter()  # run times in the reports count from the import


def parse_args(name: str, description: str, argv=None, extra=None) -> argparse.Namespace:
    """``--quick``, ``--out DIR`` (default ``studies/out/<name>``), ``--seed`` and ``--workers``;
    ``extra(parser)`` adds a study's own options."""
    p = argparse.ArgumentParser(prog=f"python -m studies.{name}", description=description)
    p.add_argument("--quick", action="store_true", help="small run for CI (under 2 minutes)")
    p.add_argument("--out", type=Path, default=OUT_ROOT / name, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="local worker processes where the study can use them")
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    return pyplot


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows of dicts as CSV (columns: the union of the keys, first-seen order)."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})


def _clean(obj):
    """JSON-safe copy: non-finite floats become None (never a NaN in a result file)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalar
        return _clean(obj.item())
    return obj


class Report:
    """Collects the blocks of a study's ``report.md`` and writes it with its data files."""

    def __init__(self, name: str, title: str, out: Path, quick: bool):
        self.name, self.out, self.quick = name, Path(out), quick
        self.lines = [f"# {title}", ""]
        self.files: list[str] = []
        self.t0 = _START
        if quick:
            self.lines += ["*Quick mode (`--quick`): a reduced run for CI; the numbers quoted in "
                           "docs/studies.md come from the full run.*", ""]

    def h2(self, text: str) -> None:
        self.lines += [f"## {text}", ""]

    def p(self, text: str) -> None:
        self.lines += [text, ""]

    def table(self, head: list[str], rows: list[list]) -> None:
        self.lines.append("| " + " | ".join(head) + " |")
        self.lines.append("|" + "---|" * len(head))
        self.lines += ["| " + " | ".join(c if isinstance(c, str) else fmt(c) for c in r) + " |" for r in rows]
        self.lines.append("")

    def figure(self, fig, filename: str, caption: str) -> None:
        if fig.get_layout_engine() is None:
            fig.tight_layout()
        fig.savefig(self.out / filename, dpi=120, bbox_inches="tight")
        plt().close(fig)
        self.files.append(filename)
        self.lines += [f"![{caption}]({filename})", "", f"*{caption}*", ""]

    def data(self, filename: str, obj) -> None:
        """Write a data file: ``.json`` (any object) or ``.csv`` (a list of flat dicts)."""
        path = self.out / filename
        if filename.endswith(".csv"):
            write_csv(path, obj)
        else:
            path.write_text(json.dumps(_clean(obj), indent=1, allow_nan=False) + "\n")
        self.files.append(filename)

    def write(self, command: str) -> Path:
        secs = time.perf_counter() - self.t0
        self.lines += ["## Reproduce", "", "```", command, "```", "",
                       f"Run time {secs:.0f} s on {platform.machine()} ({platform.python_implementation()} "
                       f"{platform.python_version()}). Data files: " + ", ".join(f"`{f}`" for f in self.files
                                                                               if not f.endswith(".png")) + ".", ""]
        path = self.out / "report.md"
        path.write_text("\n".join(self.lines))
        print(f"{self.name}: wrote {path} ({secs:.0f} s)", file=sys.stderr)
        return path


def command_line(name: str, quick: bool, extra: str = "") -> str:
    return f"python -m studies.{name}{' --quick' if quick else ''}{(' ' + extra) if extra else ''}"


def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties): ``codesign.validation.monotonicity.srcc``."""
    from codesign.validation.monotonicity import srcc

    return srcc(x, y)


def measure_cpu_ms(nets, repeats: int, warmup: int = 2) -> list[tuple[float, float]]:
    """Median and spread (interquartile range) of the forward time of each network on this
    CPU, one thread: the ``torch-cpu`` latency backend, timed runs interleaved across the
    networks so that a slow spell of the machine does not fall on one of them."""
    from codesign.validation.latency import get_backend

    rs = get_backend("torch-cpu", warmup=warmup, repeats=repeats, threads=1).measure_many(list(nets))
    return [(r.ms, r.spread) for r in rs]


def adapt(W, train, y_train, test, seed: int = 0):
    """AdaProxy (``codesign.validation.adaproxy``): fit ``(alpha * 1 + b) o w`` on the target samples
    ``train`` (row indices of the proxy features ``W``, target latencies ``y_train``) and
    predict the target latency of rows ``test``. ``W`` may be several named feature sets
    (``{encoding: matrix}``): each fit uses the one with the best validation SRCC, and the
    prediction averages fits on subsamples of ``train`` (``codesign.validation.adaproxy.bag``, as the
    CLI does). ``None`` where the module is not available."""
    try:
        from codesign.validation.adaproxy import bag, feature_sets
    except ImportError:
        return None
    sets = feature_sets(W)
    return bag(sets, train, y_train, seed=seed).predict({k: v[test] for k, v in sets.items()})
