"""``codesign accuracy``: predicted ImageNet top-1 of a sub-network of a once-for-all space, the
measured CIFAR-100 top-1 of a NAS-Bench-201 cell, or zero-cost proxy scores of cells.

The sub-network is given as an arch (``--arch '{"ks": [...20], "e": [...20], "d": [...5],
"r": 224}'``, inline JSON or a file) or, for ``ofa-mbv3``, as an OFA ``net.config``
(``--net-config PATH``; the resolution comes from ``--resolution``, else the ``run.config``
beside it, else 224).

For ``--space nasbench201``, ``--arch`` is a cell: an arch string
(``'|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|'``), ``{"ops": [6 operators]}``, or a file
with one cell per line (blank lines and ``#`` comments skipped). Without ``--proxy`` the
command prints the measured CIFAR-100 accuracy from the HW-NAS-Bench-360 table; with
``--proxy NAME[,NAME...]`` it prints the zero-cost proxy scores (``models.proxies``) of each
cell, from random weights and Gaussian inputs drawn from ``--seed``.
"""
from __future__ import annotations

import os

from models.errors import CodesignError
from models.netconfig import load_net_config, run_config_resolution
from models.predictors import PREDICTOR_ASSETS, load_predictor
from models.spaces import detect_width_mult, get_space

from ._common import MAX_RESOLUTION, emit_json, finite, int_in, load_json_arg, seed_arg

NB201 = "nasbench201"


def _arch_from_net_config(space_name: str, path: str, resolution: int | None) -> dict:
    if space_name != "ofa-mbv3":
        raise CodesignError(f"--net-config is supported for --space ofa-mbv3 only, not {space_name!r}")
    cfg = load_net_config(path)
    w = detect_width_mult(cfg)
    space = get_space(space_name)
    if w != space.width_mult:
        raise CodesignError(f"{path}: a width-{w:.1f} OFA MobileNetV3; the ofa-mbv3 accuracy predictor is for "
                            f"width {space.width_mult:.1f}")
    r = resolution if resolution is not None else (run_config_resolution(path) or 224)
    return space.from_net_config(cfg, r)


# ---------------------------------------------------------------------------- NAS-Bench-201
def _cell(text: str, what: str) -> str:
    """Canonical arch string of one cell given as an arch string or ``{"ops": [...]}`` JSON."""
    from models.spaces.nasbench201 import NasBench201Space

    s = text.strip()
    try:
        if s.startswith("{"):
            return NasBench201Space.to_string(load_json_arg(s, what))
        return NasBench201Space.to_string(s)
    except CodesignError as e:
        raise CodesignError(f"{what}: {e}") from None


def _nb201_cells(text: str) -> list[str]:
    """The cells of ``--arch``: one arch string or JSON, or a file of cells, one per line."""
    from models.inputs import read_text
    from models.proxies import MAX_CELLS

    s = text.strip()
    if s.startswith(("|", "{")):
        return [_cell(s, "--arch")]
    if os.path.isfile(text):
        cells = []
        for k, line in enumerate(read_text(text, f"--arch {text}").splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if len(cells) == MAX_CELLS:
                raise CodesignError(f"--arch {text}: more than {MAX_CELLS:,} cells")
            cells.append(_cell(line, f"--arch {text} line {k}"))
        if not cells:
            raise CodesignError(f"--arch {text}: no cells in the file (one arch string per line)")
        return cells
    if os.path.exists(text):
        raise CodesignError(f"--arch {text!r}: not a file")
    shown = s if len(s) <= 60 else s[:57] + "..."
    raise CodesignError(f"--arch: {shown!r} is not a NAS-Bench-201 cell: give an arch string like "
                        f"'|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|', "
                        f"{{\"ops\": [6 operators]}} or a file with one cell per line")


def _num(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:.6g}"


def _run_table(args, cells: list[str]) -> int:
    from models.nb201_table import TableAccuracy

    given = [o for o, v in (("--seed", args.seed), ("--batch-size", args.batch_size),
                            ("--resolution", args.resolution)) if v is not None]
    if given:
        raise CodesignError(f"{', '.join(given)}: only with --proxy (the measured accuracy is CIFAR-100 at 32x32)")
    acc = [finite(float(a), "the measured accuracy") for a in TableAccuracy().predict(cells)]
    rows = [{"arch": c, "accuracy": a} for c, a in zip(cells, acc)]
    if args.json:
        doc = {"space": NB201, "source": "HW-NAS-Bench-360 table, CIFAR-100 top-1", "cells": rows}
        if len(rows) == 1:
            doc.update(rows[0])
        emit_json(doc)
    else:
        for r in rows:
            print(f"{NB201}: measured CIFAR-100 top-1 {r['accuracy']:.4f} ({100 * r['accuracy']:.2f} %) {r['arch']}")
    return 0


def _run_proxies(args, cells: list[str]) -> int:
    from models.proxies import (DEFAULT_BATCH, DEFAULT_RESOLUTION, DEFAULT_SEED, MAX_RESOLUTION as PROXY_MAX_R,
                                MIN_RESOLUTION as PROXY_MIN_R, RANK_PROXIES, TORCH_PROXIES, parse_proxies,
                                score_cells)

    names = parse_proxies(args.proxy)
    if "rank" in names and len(cells) < 2:
        raise CodesignError("--proxy rank ranks cells against each other: give --arch a file with two or more "
                            "cells, one per line")
    r = DEFAULT_RESOLUTION if args.resolution is None else args.resolution
    if not PROXY_MIN_R <= r <= PROXY_MAX_R:
        raise CodesignError(f"--resolution: the proxies accept {PROXY_MIN_R} to {PROXY_MAX_R} pixels, got {r}")
    seed = DEFAULT_SEED if args.seed is None else args.seed
    scores = score_cells(cells, names, seed=seed, batch_size=args.batch_size, resolution=r)
    rows = [{"arch": c, "scores": {n: finite(float(scores[n][i]), f"proxy {n} of {c}") for n in names}}
            for i, c in enumerate(cells)]
    used = {n: None if n not in TORCH_PROXIES else (args.batch_size or DEFAULT_BATCH[n]) for n in names}
    if args.json:
        doc = {"space": NB201, "proxies": names, "seed": seed, "resolution": r, "batch_size": used,
               "rank_proxies": list(RANK_PROXIES) if "rank" in names else None, "cells": rows}
        if len(rows) == 1:
            doc.update(rows[0])
        emit_json(doc)
        return 0
    width = max(len(n) for n in names)
    if len(rows) == 1:
        print(f"{NB201} {rows[0]['arch']}")
        for n in names:
            note = f"  (batch {used[n]})" if used[n] else ""
            print(f"  {n:<{width}}  {_num(rows[0]['scores'][n]):>14}{note}")
    else:
        print("  ".join(f"{n:>14}" for n in names) + "  cell")
        for row in rows:
            print("  ".join(f"{_num(row['scores'][n]):>14}" for n in names) + f"  {row['arch']}")
    tail = f"seed {seed}, {r}x{r} Gaussian inputs, random weights; higher is better"
    if "rank" in names:
        tail += f"; rank = mean rank of {', '.join(RANK_PROXIES)} among these {len(rows)} cells"
    print(tail)
    return 0


def _run_nb201(args) -> int:
    if args.net_config is not None:
        raise CodesignError(f"--net-config is supported for --space ofa-mbv3 only, not {NB201!r}")
    if args.arch is None:
        raise CodesignError("give --arch CELL: a NAS-Bench-201 arch string, {\"ops\": [...]} or a file with one "
                            "cell per line")
    cells = _nb201_cells(args.arch)
    return _run_table(args, cells) if args.proxy is None else _run_proxies(args, cells)


# ---------------------------------------------------------------------------- command
def _run(args) -> int:
    space_name = str(args.space).strip().lower()
    try:
        space_name = get_space(space_name).name  # resolves aliases such as ofa-mbv3-w1.2
    except CodesignError:
        pass
    if space_name == NB201:
        return _run_nb201(args)
    if space_name not in PREDICTOR_ASSETS:
        raise CodesignError(f"no accuracy predictor for space {args.space!r} "
                            f"(available: {', '.join([*PREDICTOR_ASSETS, NB201])})")
    if args.proxy is not None:
        raise CodesignError(f"--proxy: zero-cost proxies are available for --space {NB201} only, not {space_name!r}")
    if args.seed is not None or args.batch_size is not None:
        raise CodesignError("--seed and --batch-size apply to --proxy (--space nasbench201) only")
    if (args.arch is None) == (args.net_config is None):
        raise CodesignError("give exactly one of --arch JSON or --net-config PATH")
    if args.arch is not None:
        arch = get_space(space_name).validate(load_json_arg(args.arch, "--arch"))
        if args.resolution is not None:
            arch = get_space(space_name).validate({**arch, "r": args.resolution})
    else:
        arch = _arch_from_net_config(space_name, args.net_config, args.resolution)
    acc = finite(float(load_predictor(space_name).predict([arch])[0]), "the predicted accuracy")
    if args.json:
        emit_json({"accuracy": acc, "space": space_name, "arch": arch})
    else:
        print(f"{space_name}: predicted top-1 {acc:.4f} ({100 * acc:.2f} %) at r={arch['r']}")
    return 0


def register(sub) -> None:
    from models.proxies import MAX_BATCH

    p = sub.add_parser("accuracy", help="predicted top-1 of a once-for-all sub-network, measured accuracy or "
                                        "zero-cost proxies of a NAS-Bench-201 cell")
    p.add_argument("--space", default="ofa-mbv3", metavar="NAME",
                   help=f"search space ({', '.join([*PREDICTOR_ASSETS, NB201])}; default ofa-mbv3)")
    p.add_argument("--arch", metavar="JSON|CELL",
                   help="architecture as JSON (inline or a file); for nasbench201 an arch string, "
                        "{\"ops\": [...]} or a file with one cell per line")
    p.add_argument("--net-config", metavar="PATH", help="OFA net.config file or folder (ofa-mbv3)")
    p.add_argument("--resolution", type=int_in(1, MAX_RESOLUTION), metavar="R",
                   help="input resolution (overrides the arch / run.config; with --proxy: 4 to 128, default 32)")
    p.add_argument("--proxy", metavar="NAME[,NAME...]",
                   help="nasbench201: zero-cost proxy scores instead of the measured accuracy (params, macs, "
                        "synflow, zen, naswot, grad_norm, snip, fisher, jacob_cov, meco, meco_opt, rank)")
    p.add_argument("--seed", type=seed_arg(), metavar="S", help="--proxy: seed of weights and inputs (default 0)")
    p.add_argument("--batch-size", type=int_in(1, MAX_BATCH), metavar="B",
                   help="--proxy: batch of Gaussian inputs for every data-driven proxy (default: per proxy, "
                        "1 for synflow, meco and meco_opt, 16 for the others)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
