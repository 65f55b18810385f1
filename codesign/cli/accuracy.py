"""``codesign accuracy``: predicted ImageNet top-1 of a sub-network of a once-for-all space.

The sub-network is given as an arch (``--arch '{"ks": [...20], "e": [...20], "d": [...5],
"r": 224}'``, inline JSON or a file) or, for ``ofa-mbv3``, as an OFA ``net.config``
(``--net-config PATH``; the resolution comes from ``--resolution``, else the ``run.config``
beside it, else 224).
"""
from __future__ import annotations

from models.errors import CodesignError
from models.netconfig import load_net_config, run_config_resolution
from models.predictors import PREDICTOR_ASSETS, load_predictor
from models.spaces import detect_width_mult, get_space

from ._common import MAX_RESOLUTION, emit_json, finite, int_in, load_json_arg


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


def _run(args) -> int:
    space_name = str(args.space).strip().lower()
    try:
        space_name = get_space(space_name).name  # resolves aliases such as ofa-mbv3-w1.2
    except CodesignError:
        pass
    if space_name not in PREDICTOR_ASSETS:
        raise CodesignError(f"no accuracy predictor for space {args.space!r} "
                            f"(available: {', '.join(PREDICTOR_ASSETS)})")
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
    p = sub.add_parser("accuracy", help="predicted top-1 accuracy of a once-for-all sub-network")
    p.add_argument("--space", default="ofa-mbv3", metavar="NAME",
                   help=f"search space with a predictor ({', '.join(PREDICTOR_ASSETS)}; default ofa-mbv3)")
    p.add_argument("--arch", metavar="JSON", help="architecture as JSON (inline or a file)")
    p.add_argument("--net-config", metavar="PATH", help="OFA net.config file or folder (ofa-mbv3)")
    p.add_argument("--resolution", type=int_in(1, MAX_RESOLUTION), metavar="R",
                   help="input resolution (overrides the arch / run.config)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
