"""Fuzzing every user input through the CLI: a seeded generator of bad inputs per format and a
harness that checks what a user sees.

Each case is one ``codesign`` command line (plus the files it names) and an expectation:
``"error"`` (a bad input: it must exit 2) or ``"either"`` (an edge case: exit 0 or 2). Each
runs as ``codesign.cli.main(argv)`` in a forked child (the heavy modules are imported once in
the parent), with stdout / stderr in files and a time bound. The verdicts:

- ``ok``: exit 0 with strict JSON on stdout (no NaN / Infinity), or exit 2 with one error line;
- ``traceback``: "Traceback" on stderr, or an exit code other than 0, 2 and 130 (a crash);
- ``hang``: still running at the time bound (killed);
- ``silently-accepted``: an ``"error"`` case that exited 0;
- ``bad-json``: exit 0 but stdout is not strict JSON;
- ``multi-line``: exit 2 without exactly one ``codesign[ COMMAND]: error: ...`` line as the last
  line of stderr (argparse's ``usage:`` lines before it and progress bars are tolerated).

``python -m codesign.bench.fuzz --cases N --seed S [--json] [--timeout S] [--probes]``; same seed,
same cases. ``--probes`` adds each known bad input once, before the random cases.
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

NAME = "fuzz"
HELP = "feed seeded bad inputs of every format to the CLI and count tracebacks, hangs and silent accepts"

CATEGORIES = ("ok", "traceback", "hang", "silently-accepted", "bad-json", "multi-line")
FAILURES = CATEGORIES[1:]

DEFAULT_TIMEOUT_S = 20.0
MAX_CASES = 100_000          # generator bound; a long run is a few thousand
MAX_JOBS = 64
CHILD_MEMORY_BYTES = 6 * 2 ** 30   # a case that needs more is an unbounded allocation

ERROR_LINE = re.compile(r"^codesign(?: [\w-]+)*: error: \S")
SENTINEL = "__fuzz_sentinel__"
DUP_SENTINEL = "__fuzz_duplicate__"
TINY_LAYER = "K=16,C=16,P=8,Q=8,R=3,S=3"


# ---- cases -------------------------------------------------------------------------------------

@dataclass
class Case:
    """One command line: ``{d}`` in ``argv`` is the case's directory, ``{s}`` the seed directory."""
    format: str
    mutation: str
    argv: list
    expect: str = "error"
    files: dict = field(default_factory=dict)      # path relative to {d} -> bytes

    def to_dict(self) -> dict:
        return {"format": self.format, "mutation": self.mutation, "argv": self.argv, "expect": self.expect,
                "files": {k: _describe_bytes(v) for k, v in self.files.items()}}


def _describe_bytes(data: bytes, n: int = 300) -> str:
    """A short, printable description of a file's contents."""
    head = data[:n]
    try:
        text = head.decode("utf-8")
        if not all(c.isprintable() or c in "\n\t" for c in text):
            raise UnicodeDecodeError("utf-8", head, 0, 1, "not printable")
    except UnicodeDecodeError:
        return f"<{len(data):,} bytes, binary, starting {data[:40]!r}>"
    more = f" ... ({len(data):,} bytes)" if len(data) > n else ""
    return text + more


# ---- seed documents ----------------------------------------------------------------------------

@dataclass
class Seeds:
    dir: Path
    accelerators: dict            # preset name -> YAML text
    boards: dict                  # board name -> YAML text
    workload: dict                # Network.to_dict() of a three-layer network ({s}/tiny.json)
    onnx: object | None           # onnx.ModelProto of a small CNN
    net_configs: dict             # name -> net.config dict
    archs: list                   # ofa-mbv3 archs
    csv_text: str                 # a small latency table
    run_dir: Path | None          # a finished tiny search ({s}/run)
    peer_data: dict | None = None  # SCALE-Sim comparison data, a few records
    notes: list = field(default_factory=list)


def _tiny_network() -> dict:
    from models import Layer, Network
    net = Network("tiny", [Layer.conv("c1", 3, 8, 8, 3, stride=2), Layer.conv("dw", 8, 8, 8, 3, groups=8),
                           Layer.fc("fc", 8, 10)])
    return net.to_dict()


def _chain_network() -> dict:
    """A fusable three-layer chain with graph edges (``{s}/chain.json``) and a valid fused
    schedule of it (the seed the schedule-file cases mutate)."""
    from models.zoo._builder import NetBuilder
    b = NetBuilder("chain", 3, 16)
    b.conv("c1", 8, 3, stride=2).dwconv("dw", 3).conv("pw", 16, 1)
    return b.build(16).to_dict()


CHAIN_SCHEDULE = {"schedule": "fused", "network": "chain",
                  "stacks": [{"layers": ["c1", "dw"], "tile": [2, 8], "overlap": "cache"},
                             {"layers": ["pw"], "tile": None, "overlap": "recompute"}]}


def _onnx_model():
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 1, 3, 3)).astype(np.float32), "w2")
    w3 = numpy_helper.from_array(rng.standard_normal((8, 10)).astype(np.float32), "w3")
    shape = numpy_helper.from_array(np.array([1, 8], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2],
                         group=1, dilations=[1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1],
                         group=8),
        helper.make_node("GlobalAveragePool", ["c2"], ["p"]),
        helper.make_node("Reshape", ["p", "shape"], ["f"]),
        helper.make_node("MatMul", ["f", "w3"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
                              initializer=[w1, w2, w3, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _csv_text(rows: int = 40, seed: int = 0) -> str:
    rng = random.Random(seed)
    out = io.StringIO()
    out.write("arch,lat_a,lat_b,lat_c\n")
    for i in range(rows):
        base = rng.uniform(1.0, 20.0)
        out.write(f"{i},{base:.4f},{base * rng.uniform(0.8, 1.2):.4f},{rng.uniform(1.0, 20.0):.4f}\n")
    return out.getvalue()


def prepare_seeds(directory, *, timeout: float = 180.0, run_dir: bool = True, log=None) -> Seeds:
    """Write the valid seed documents into ``directory`` (and a finished tiny search run in
    ``directory/run`` unless ``run_dir`` is false)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    notes = []
    import accelerators
    acc_dir = Path(accelerators.__file__).parent
    accs = {p.stem: p.read_text(encoding="utf-8") for p in sorted((acc_dir / "presets").glob("*.yaml"))}
    boards = {p.stem: p.read_text(encoding="utf-8") for p in sorted((acc_dir / "fpga" / "boards").glob("*.yaml"))}
    workload = _tiny_network()
    (d / "tiny.json").write_text(json.dumps(workload, indent=1))
    (d / "chain.json").write_text(json.dumps(_chain_network(), indent=1))
    try:
        model = _onnx_model()
    except Exception as e:  # noqa: BLE001 - onnx is a dependency, but a broken install only skips a format
        model = None
        notes.append(f"onnx seed unavailable: {type(e).__name__}: {e}")
    net_configs, archs = {}, []
    try:
        import numpy as np
        from models.spaces import get_space
        space = get_space("ofa-mbv3")
        rng = np.random.default_rng(0)
        archs = [space.sample(rng) for _ in range(4)]
        net_configs["ofa-mbv3"] = space.to_net_config(archs[0])
    except Exception as e:  # noqa: BLE001
        notes.append(f"ofa-mbv3 seeds unavailable: {type(e).__name__}: {e}")
    assets = os.environ.get("CODESIGN_ASSETS")
    if assets:
        p = Path(assets) / "proxylessnas" / "proxyless_mobile.config"
        if p.is_file():
            net_configs["proxyless_mobile"] = json.loads(p.read_text(encoding="utf-8"))
    csv_text = _csv_text()
    peer = None
    try:
        import codesign.validation.peers as peers
        peer = json.loads((Path(peers.__file__).parent / "data" / "scalesim.json").read_text(encoding="utf-8"))
        peer["records"] = peer["records"][:8]
    except Exception as e:  # noqa: BLE001
        notes.append(f"peer data seed unavailable: {type(e).__name__}: {e}")
    (d / "latency.csv").write_text(csv_text)
    (d / "token").write_text("fuzz-token-0123456789abcdef\n")
    (d / "token").chmod(0o600)  # the agent refuses a token others may read
    (d / "token_shared").write_text("fuzz-token-0123456789abcdef\n")
    (d / "token_shared").chmod(0o640)
    run = None
    if run_dir:
        run = d / "run"
        if not (run / "result.json").is_file():
            if run.exists():
                shutil.rmtree(run)
            argv = ["search", "--workload", str(d / "tiny.json"), "--budget", "2", "--workers", "1",
                    "--out", str(run), "--quiet", "--json"]
            res = run_child(argv, d, timeout=timeout)
            if res["rc"] != 0 or not (run / "result.json").is_file():
                notes.append(f"seed run directory not made (codesign {' '.join(argv)}: rc {res['rc']}; "
                             f"{res['stderr'][-500:]}); run-directory formats skipped")
                run = None
        for junk in (run.glob("*.png") if run else ()):
            junk.unlink()
    if log:
        for n in notes:
            log(n)
    return Seeds(d, accs, boards, workload, model, net_configs, archs, csv_text, run, peer, notes)


# ---- tree mutations (YAML / JSON documents) ----------------------------------------------------

@dataclass
class Spec:
    """What a format accepts, as far as the fuzzer needs to know to set an expectation."""
    positive: frozenset = frozenset()     # keys whose value must be > 0
    enums: frozenset = frozenset()        # keys whose string value comes from a fixed set
    dict_ok: frozenset = frozenset()      # string keys that may also hold a mapping
    scalar_ok: frozenset = frozenset()    # mapping keys that may also hold one number
    unchecked: frozenset = frozenset()    # keys the loader may ignore: type errors there are "either"
    required: frozenset = frozenset()     # keys whose deletion is an error
    unknown: str = "error"                # expectation for an unknown key
    strict: bool = True                   # False: value mutations are all "either"


def _leaves(obj, path=()):
    """(path, value) of every node below the root."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield path + (k,), v
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield path + (i,), v
            yield from _leaves(v, path + (i,))


def _dicts(obj, path=()):
    if isinstance(obj, dict):
        yield path, obj
    for p, v in _leaves(obj, path):
        if isinstance(v, dict):
            yield p, v


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def _set(obj, path, value):
    _get(obj, path[:-1])[path[-1]] = value


def _key_of(path) -> str:
    for p in reversed(path):
        if isinstance(p, str):
            return p
    return ""


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _value_mutations(value, path, spec: Spec):
    """(label, new value, expectation) candidates for replacing the ``value`` at ``path``."""
    key = _key_of(path)
    checked = spec.strict and not any(isinstance(k, str) and k in spec.unchecked for k in path)
    E = "error" if checked else "either"
    out = []
    if _is_num(value) or (value is None and key in spec.positive):
        pos = key in spec.positive
        out += [("-1", -1, E), ("0", 0, E if pos else "either"), ("nan", math.nan, E), ("inf", math.inf, E),
                ("-inf", -math.inf, E), ("1e30", 1e30, E), ("10**400", 10 ** 400, E), ("2**62", 2 ** 62, E),
                ("1e9", 10 ** 9, "either"), ("1e-300", 1e-300, "either"), ("'abc'", "abc", E),
                ("[1, 2]", [1, 2], E), ("{a: 1}", {"a": 1}, E), ("null", None, "either"), ("true", True, "either"),
                ("'12'", "12", "either"), ("3.5", 3.5, "either"), ("-1e-9", -1e-9, E), ("500", 500, "either")]
    elif isinstance(value, bool):
        out += [("'abc'", "abc", "either"), ("2", 2, "either"), ("null", None, "either"), ("[true]", [True], E)]
    elif isinstance(value, str):
        enum = key in spec.enums and key not in spec.dict_ok
        out += [("123", 123, E if enum else "either"), ("''", "", "either"),
                ("'BOGUS'", "BOGUS", E if key in spec.enums else "either"),
                ("['a']", ["a"], E), ("{a: 1}", {"a": 1}, "either" if key in spec.dict_ok else E),
                ("null", None, "either"), ("'x'*5000", "x" * 5000, "either"), ("1e30", 1e30, "either"),
                ("'\\u202e\\x01'", "\u202e\x01", "either")]
    elif value is None:
        out += [("-1", -1, "either"), ("'abc'", "abc", "either"), ("[]", [], "either"), ("nan", math.nan, "either")]
    elif isinstance(value, list):
        out += [("5", 5, E), ("'abc'", "abc", E), ("{}", {}, E), ("[]", [], "either"), ("null", None, "either"),
                ("[[[]]]", [[[]]], E), ("x2000", (value * 2000)[:20000] if value else [], "either")]
    elif isinstance(value, dict):
        out += [("[]", [], E), ("5", 5, "either" if key in spec.scalar_ok else E), ("'abc'", "abc", E),
                ("{}", {}, "either"), ("null", None, "either")]
    return out


def _deep(n: int = 2000) -> str:
    return "[" * n + "]" * n


def _alias_bomb(levels: int = 9, width: int = 10) -> str:
    parts = ["&l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        parts.append(f"&l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "[" + ", ".join(parts) + "]"


def _dump(doc, kind: str) -> str:
    if kind == "json":
        return json.dumps(doc, indent=1, allow_nan=True)
    import yaml
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, allow_unicode=True, width=120)


def mutate_tree(rng: random.Random, doc, kind: str, spec: Spec):
    """A mutated document: (description, bytes, expectation). ``kind`` is ``"yaml"`` or ``"json"``."""
    doc = copy.deepcopy(doc)
    ops = ["value"] * 8 + ["delete"] * 2 + ["unknown", "dup_key", "deep", "encoding", "truncate", "garbage",
                                             "whole", "bom_ok"]
    if kind == "yaml":
        ops += ["alias_bomb"] * 2
    op = rng.choice(ops)
    leaves = list(_leaves(doc))
    if op == "value" and leaves:
        path, old = rng.choice(leaves)
        cands = _value_mutations(old, path, spec)
        if cands:
            label, new, expect = rng.choice(cands)
            _set(doc, path, new)
            return f"{_fmt_path(path)} = {label}", _dump(doc, kind).encode(), expect
        op = "unknown"
    if op == "delete" and leaves:
        path, _ = rng.choice([lv for lv in leaves if isinstance(lv[0][-1], str)] or leaves)
        parent = _get(doc, path[:-1])
        del parent[path[-1]]
        checked = spec.strict and not any(isinstance(k, str) and k in spec.unchecked for k in path)
        expect = "error" if checked and path[-1] in spec.required else "either"
        return f"delete {_fmt_path(path)}", _dump(doc, kind).encode(), expect
    if op in ("unknown", "dup_key") or (op == "value" and not leaves):
        dicts = list(_dicts(doc))
        if not dicts:
            return "whole document 42", b"42\n", "error"
        path, d = rng.choice(dicts)
        if op == "dup_key" and d:
            key = rng.choice(list(d))
            d[DUP_SENTINEL] = copy.deepcopy(d[key])
            text = _dump(doc, kind).replace(DUP_SENTINEL, key)
            return f"duplicate key {_fmt_path(path + (key,))}", text.encode(), "error"
        d["bogus_field"] = 1
        return f"unknown key {_fmt_path(path + ('bogus_field',))}", _dump(doc, kind).encode(), spec.unknown
    if op in ("deep", "alias_bomb") and leaves:
        path, _ = rng.choice(leaves)
        _set(doc, path, SENTINEL)
        snippet = _deep() if op == "deep" else _alias_bomb()
        text = _dump(doc, kind).replace(f'"{SENTINEL}"', snippet).replace(SENTINEL, snippet)
        what = "2000-deep nesting" if op == "deep" else "alias bomb (10**9 values)"
        return f"{_fmt_path(path)} = {what}", text.encode(), "error"
    text = _dump(doc, kind)
    return _damage(rng, text, kind)


def _damage(rng: random.Random, text: str, kind: str):
    """Whole-file damage: encodings, truncation, garbage, whole-document replacements."""
    choice = rng.choice(["utf16", "latin1", "bad_bytes", "nul", "truncate", "garbage", "empty", "whole", "bom_ok",
                         "crlf_ok"] + (["oversize"] if kind in ("yaml", "json") else []))
    if choice == "oversize":  # past the 32 MiB bound of a text input; a comment or trailing blanks
        pad = ("#" + " " * 1023 + "\n") if kind == "yaml" else (" " * 1023 + "\n")
        return "40 MiB of padding", (text + pad * (40 * 1024)).encode(), "error"
    if choice == "utf16":
        return "UTF-16 encoded", text.encode("utf-16"), "error"
    if choice == "latin1":
        return "a latin-1 byte inserted", _insert(rng, text.encode(), b"\xe9"), "error"
    if choice == "bad_bytes":
        return "invalid UTF-8 bytes inserted", _insert(rng, text.encode(), b"\xff\xfe\xc3"), "error"
    if choice == "nul":
        return "NUL bytes inserted", _insert(rng, text.encode(), b"\x00\x00"), "error"
    if choice == "truncate":
        data = text.encode()
        cut = rng.randrange(1, max(2, len(data) - 2))
        expect = "error" if kind == "json" and data[cut:].strip() else "either"
        return f"truncated at byte {cut} of {len(data)}", data[:cut], expect
    if choice == "garbage":
        return "256 random bytes", bytes(rng.randrange(256) for _ in range(256)), "error"
    if choice == "empty":
        return "empty file", b"", "error"
    if choice == "whole":
        label, data = rng.choice([("null", b"null\n"), ("42", b"42\n"), ("'a string'", b'"a string"\n'),
                                  ("[]", b"[]\n"), ("[1, 2]", b"[1, 2]\n"), ("{}", b"{}\n"), ("-1e400", b"-1e400\n")])
        return f"whole document {label}", data, "error"
    if choice == "bom_ok":
        return "UTF-8 byte-order mark (valid)", b"\xef\xbb\xbf" + text.encode(), "either"
    return "CRLF line ends (valid)", text.replace("\n", "\r\n").encode(), "either"


def _insert(rng: random.Random, data: bytes, junk: bytes) -> bytes:
    i = rng.randrange(0, len(data) + 1)
    return data[:i] + junk + data[i:]


def _fmt_path(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out or "(root)"


# ---- formats -----------------------------------------------------------------------------------

ACCEL_SPEC = Spec(
    positive=frozenset({"size", "capacity_bytes", "bw_words_per_cycle", "bw_bits_per_cycle", "clock_mhz", "word_bits",
                        "W", "I", "O", "read_energy_pj", "write_energy_pj"}),
    enums=frozenset({"loops", "kind", "stationary", "energy_table"}),
    dict_ok=frozenset({"energy_table"}),
    scalar_ok=frozenset({"word_bits", "capacity_bytes"}),
    unchecked=frozenset({"notes"}),
    required=frozenset({"array", "rf", "glb", "dram", "size", "loops"}),
)
BOARD_SPEC = Spec(
    positive=frozenset({"dsp", "bram36", "lut", "ff", "clock_mhz", "ddr_bandwidth_gbs", "mem_port_bits"}),
    unchecked=frozenset({"part", "dsp_kind", "ddr_kind", "notes"}),
    required=frozenset({"dsp", "bram36", "lut", "clock_mhz", "ddr_bandwidth_gbs"}),
)
WORKLOAD_SPEC = Spec(
    positive=frozenset({"G", "N", "K", "C", "P", "Q", "R", "S", "stride", "dilation", "resolution"}),
    enums=frozenset({"op"}),
    unchecked=frozenset({"macs", "params", "total", "unique_shapes", "name", "bias"}),
    required=frozenset({"layers", "dims"}),
    unknown="either",
)
NETCONFIG_SPEC = Spec(
    positive=frozenset({"in_channels", "out_channels", "kernel_size", "stride", "expand_ratio", "in_features",
                        "out_features", "mid_channels", "dilation", "groups"}),
    unchecked=frozenset({"name", "bn", "momentum", "eps", "bias", "has_shuffle", "use_bn", "act_func", "dropout_rate",
                         "ops_order", "shortcut", "use_se", "mid_channels"}),
    required=frozenset({"blocks", "first_conv", "mobile_inverted_conv"}),
    unknown="either",
)
RESULT_SPEC = Spec(strict=False, unknown="either")   # written by the tool; damage must not crash it
CONFIG_SPEC = Spec(
    positive=frozenset({"budget", "batch", "population", "generations"}),
    enums=frozenset({"objective", "constraint", "mapper", "final_mapper", "subnet_mapper", "envelope", "optimizer",
                     "space"}),
    unchecked=frozenset({"min_accuracy", "resolution"}),
    required=frozenset({"workloads", "budget"}),
    unknown="either",
)


def _file(case_file: str) -> str:
    return "{d}/" + case_file


def gen_accelerator(rng, seeds: Seeds) -> Case:
    import yaml
    name = rng.choice(sorted(seeds.accelerators))
    doc = yaml.safe_load(seeds.accelerators[name])
    desc, data, expect = mutate_tree(rng, doc, "yaml", ACCEL_SPEC)
    f = _file("acc.yaml")
    argv = rng.choice([["accelerators", "show", f, "--json"],
                       ["map", "--accelerator", f, "--layer", TINY_LAYER, "--optimizer", "heuristic", "--json"],
                       ["evaluate", "--accelerator", f, "--workload", "{s}/tiny.json", "--optimizer", "heuristic",
                        "--json"]])
    return Case("accelerator-yaml", f"{name}.yaml: {desc}", argv, expect, {"acc.yaml": data})


def gen_board(rng, seeds: Seeds) -> Case:
    import yaml
    name = rng.choice(sorted(seeds.boards))
    doc = yaml.safe_load(seeds.boards[name])
    desc, data, expect = mutate_tree(rng, doc, "yaml", BOARD_SPEC)
    argv = ["fpga", "--board", _file("board.yaml"), "--model", "zhang15", "--design", "Tm=16,Tn=4,Tr=8,Tc=8",
            "--workload", "{s}/tiny.json", "--allow-over-budget", "--json"]
    return Case("board-yaml", f"{name}.yaml: {desc}", argv, expect, {"board.yaml": data})


def gen_workload(rng, seeds: Seeds) -> Case:
    desc, data, expect = mutate_tree(rng, seeds.workload, "json", WORKLOAD_SPEC)
    f = _file("net.json")
    argv = rng.choice([["workloads", "show", f, "--json"],
                       ["evaluate", "--accelerator", "eyeriss", "--workload", f, "--optimizer", "heuristic", "--json"],
                       ["latency", "--backend", "analytical:eyeriss", "--workload", f, "--json"]])
    return Case("workload-json", f"tiny.json: {desc}", argv, expect, {"net.json": data})


SCHEDULE_SPEC = Spec(
    positive=frozenset({"tile"}),
    enums=frozenset({"overlap"}),
    unchecked=frozenset({"schedule", "network"}),
    required=frozenset({"stacks", "layers"}),
)


def gen_schedule(rng, seeds: Seeds) -> Case:
    desc, data, expect = mutate_tree(rng, CHAIN_SCHEDULE, "yaml", SCHEDULE_SPEC)
    argv = ["evaluate", "--accelerator", "eyeriss", "--workload", "{s}/chain.json", "--optimizer", "heuristic",
            "--schedule", _file("sched.yaml"), "--json"]
    return Case("schedule-yaml", f"chain schedule: {desc}", argv, expect, {"sched.yaml": data})


def gen_netconfig(rng, seeds: Seeds) -> Case:
    name = rng.choice(sorted(seeds.net_configs))
    desc, data, expect = mutate_tree(rng, seeds.net_configs[name], "json", NETCONFIG_SPEC)
    f = _file("net.config")
    cmds = [["workloads", "show", f, "--json"],
            ["latency", "--backend", "fpga:zcu102:zcu102-1", "--arch", f, "--resolution", "160", "--json"]]
    if name == "ofa-mbv3":
        cmds.append(["accuracy", "--net-config", f, "--resolution", "160", "--json"])
    return Case("net-config", f"{name} net.config: {desc}", rng.choice(cmds), expect, {"net.config": data})


def gen_arch(rng, seeds: Seeds) -> Case:
    arch = copy.deepcopy(rng.choice(seeds.archs))
    op = rng.choice(["value", "value", "value", "length", "text"])
    if op == "length":
        key = rng.choice(["ks", "e", "d"])
        n = rng.choice([0, 1, len(arch[key]) - 1, len(arch[key]) + 1, 10 ** 5])
        arch[key] = (arch[key] * (n // max(1, len(arch[key])) + 1))[:n]
        desc, text, expect = f"len({key}) = {n}", json.dumps(arch), "error"
    elif op == "text":
        desc, raw, expect = _damage(rng, json.dumps(arch), "json")
        text = raw.decode("utf-8", "replace").replace("\x00", "")
        if not text.strip() or desc.startswith(("UTF-8 byte-order", "CRLF")):
            text, expect = "{" + text, "error"
        else:
            expect = "error" if text != json.dumps(arch) else "either"
    else:
        key = rng.choice(["ks", "e", "d", "r"])
        off_grid = {"ks": 4, "e": 5, "d": 1}.get(key, 2)  # a value between the choices of the key
        label, new = rng.choice([("0", 0), ("-1", -1), (str(off_grid), off_grid), ("9", 9), ("nan", math.nan),
                                 ("1e30", 1e30), ("'3'", "3"), ("null", None), ("10**400", 10 ** 400), ("4.5", 4.5)])
        if key == "r":
            label, new = rng.choice([("0", 0), ("-224", -224), ("100000", 100000), ("225", 225), ("nan", math.nan),
                                     ("'224'", "224"), ("10**400", 10 ** 400)])
            arch["r"] = new
            desc = f"r = {label}"
            if new == 225:  # off the predictor's grid, a valid input size for a latency
                text = json.dumps(arch)
                argv = rng.choice([["accuracy", "--space", "ofa-mbv3", "--arch", text, "--json"],
                                   ["latency", "--backend", "fpga:zcu102:zcu102-1", "--space", "ofa-mbv3", "--arch",
                                    text, "--json"]])
                return Case("arch-json", f"ofa-mbv3 arch: {desc}", argv, "either")
        else:
            i = rng.randrange(len(arch[key]))
            arch[key][i] = new
            desc = f"{key}[{i}] = {label}"
        text, expect = json.dumps(arch, allow_nan=True), "error"
    argv = rng.choice([["accuracy", "--space", "ofa-mbv3", "--arch", text, "--json"],
                       ["latency", "--backend", "fpga:zcu102:zcu102-1", "--space", "ofa-mbv3", "--arch", text,
                        "--json"]])
    return Case("arch-json", f"ofa-mbv3 arch: {desc}", argv, expect)


def gen_layer(rng, seeds: Seeds) -> Case:
    table = [
        ("K=1e20", "error"), ("K=" + str(2 ** 62), "error"), ("K=1,K=2", "error"), ("K=0", "error"),
        ("K=-1", "error"), ("K", "error"), ("Z=3", "error"), ("K=abc", "error"), ("K=3.5", "error"),
        ("K=16,stride=0", "error"), ("K=16,stride=-2", "error"), ("K=16,dilation=0", "error"),
        ("K=16,padding=-1", "error"), ("G=0,K=4", "error"), ("N=0", "error"), ("K=" + "9" * 400, "error"),
        ("K=16,R=3,S=3,P=8,Q=8,dilation=500", "either"), (TINY_LAYER, "either"), ("", "either"),
        ("K=16,,C=4", "either"), (" K = 16 , C = 4 ", "either"), ("K=\uff11\uff16", "either"),
        ("k=16", "either"), ("K=nan", "error"), ("K=inf", "error"), ("K=16,C=16,P=8,Q=8,R=9,S=9", "either"),
        ("N=1000000,K=4096,C=4096,P=1000,Q=1000,R=7,S=7", "either"), ("K=1000000000", "error"),
        ("K=16,stride=1000000000", "error"), ("=", "error"), ("K==4", "error"), ("K=4=4", "error"),
        ("K=16;C=16", "error"), ("K=0x10", "error"), ("K=1_000", "either"), ("K=+4", "either"),
    ]
    spec, expect = rng.choice(table)
    if rng.random() < 0.3 and expect == "error":
        spec = TINY_LAYER + "," + spec
        if spec.count("K=") > 1:
            expect = "error"
    argv = ["map", "--accelerator", rng.choice(["eyeriss", "simba", "shidiannao"]), "--layer", spec,
            "--optimizer", rng.choice(["heuristic", "auto"]), "--json"]
    return Case("layer-spec", f"--layer {spec!r}", argv, expect)


def gen_fpga_design(rng, seeds: Seeds) -> Case:
    zhang = ["Tm=64,Tn=7,Tr=13,Tc=13", "Tm=16,Tn=4,Tr=8,Tc=8"]
    hot = ["Tm=160,Tn=12,Tr=32,Tc=32,Tmd=576,Ip=11,Op=8,Wp=13"]
    base = rng.choice(zhang + hot)
    keys = [kv.split("=")[0] for kv in base.split(",")]
    op = rng.choice(["value", "value", "value", "dup", "unknown", "missing", "valid", "text", "limit", "clock"])
    extra, expect = [], "error"
    if op == "value":
        k = rng.choice(keys)
        label = rng.choice(["0", "-1", "1e20", str(2 ** 62), "abc", "nan", "3.5", "1000000000", "", "9" * 400])
        spec = re.sub(rf"\b{k}=[^,]*", f"{k}={label}", base)
        desc = f"--design {k}={label}"
    elif op == "dup":
        k = rng.choice(keys)
        spec, desc = base + f",{k}=8", f"--design duplicate {k}"
    elif op == "unknown":
        spec, desc = base + ",Zz=3", "--design unknown key Zz"
    elif op == "missing":
        k = rng.choice(keys)
        spec = ",".join(kv for kv in base.split(",") if not kv.startswith(k + "="))
        desc = f"--design without {k}"
        if k == "Tk":
            expect = "either"
    elif op == "valid":
        spec, desc, expect = base, "--design valid", "either"
    elif op == "text":
        spec = rng.choice(["", ",", "Tm", "Tm=", "=4", "Tm=4;Tn=4", "Tm=4=4", "\x00", "Tm=１６,Tn=4,Tr=8,Tc=8"])
        desc = f"--design {spec!r}"
        if spec.startswith("Tm=１６"):
            expect = "either"
    elif op == "limit":
        lim = rng.choice(["dsp=-1", "dsp=0", "dsp=nan", "dsp=1e30", "bram36=abc", "clock_mhz=nan", "clock_mhz=0",
                          "ddr_bandwidth_gbs=inf", "ddr_bandwidth_gbs=1e-300", "bogus=3", "dsp=1,dsp=2",
                          "dsp=" + "9" * 400])
        spec, extra, desc = base, ["--limit", lim], f"--limit {lim}"
    else:
        c = rng.choice(["nan", "0", "-100", "1e30", "inf", "abc", "1e-300"])
        spec, extra, desc = base, ["--clock-mhz", c], f"--clock-mhz {c}"
    argv = ["fpga", "--board", "zcu102", "--design", spec, "--workload", "{s}/tiny.json", *extra, "--json"]
    if op in ("limit", "clock", "valid"):
        argv.insert(-1, "--allow-over-budget")
    return Case("fpga-design", desc, argv, expect)


def gen_onnx(rng, seeds: Seeds) -> Case:
    import onnx
    from onnx import helper

    m = copy.deepcopy(seeds.onnx)
    g = m.graph
    convs = [n for n in g.node if n.op_type == "Conv"]
    op = rng.choice(["attr", "attr", "attr", "input_dim", "input_dim", "opset", "scalar_matmul", "drop_init",
                     "op_type", "bytes", "bytes", "dangling"])
    expect = "error"
    if op == "attr":
        node = rng.choice(convs)
        name, value, expect = rng.choice([
            ("group", 0, "error"), ("group", -1, "error"), ("group", 3, "error"), ("group", 10 ** 12, "error"),
            ("strides", [0, 0], "error"), ("strides", [-1, 1], "error"), ("strides", [10 ** 9, 1], "either"),
            ("pads", [-5, -5, -5, -5], "error"), ("pads", [10 ** 9] * 4, "error"), ("dilations", [500, 500], "error"),
            ("dilations", [0, 0], "error"), ("kernel_shape", [0, 0], "error"), ("kernel_shape", [5, 5], "error"),
            ("kernel_shape", [3], "error"), ("auto_pad", "BOGUS", "error"), ("auto_pad", "SAME_UPPER", "either"),
            ("strides", [2, 2, 2], "error"), ("pads", [1, 1], "error")])
        for a in list(node.attribute):
            if a.name == name:
                node.attribute.remove(a)
        if name == "auto_pad":
            for a in list(node.attribute):
                if a.name == "pads":
                    node.attribute.remove(a)
        node.attribute.append(helper.make_attribute(name, value))
        desc = f"{node.output[0]} Conv {name} = {value!r}"
    elif op == "input_dim":
        dims = g.input[0].type.tensor_type.shape.dim
        i = rng.randrange(4)
        label, val = rng.choice([("0", 0), ("-1", -1), ("10**9", 10 ** 9), ("2**62", 2 ** 62), ("'N' (symbolic)", "N")])
        if isinstance(val, str):
            dims[i].ClearField("dim_value")
            dims[i].dim_param = val
            expect = "either"
        else:
            dims[i].dim_value = val
            if val == 10 ** 9 and i == 0:
                expect = "either"
        desc = f"input dim {i} = {label}"
    elif op == "opset":
        v = rng.choice([99999, 0, 1])
        m.opset_import[0].version = v
        desc, expect = f"opset {v}", "either"
    elif op == "scalar_matmul":
        from onnx import numpy_helper
        import numpy as np
        for i, t in enumerate(g.initializer):
            if t.name == "w3":
                g.initializer[i].CopyFrom(numpy_helper.from_array(np.array(2.0, dtype=np.float32), "w3"))
        desc = "MatMul weight is a scalar"
    elif op == "drop_init":
        name = rng.choice([t.name for t in g.initializer])
        for t in list(g.initializer):
            if t.name == name:
                g.initializer.remove(t)
        desc = f"initializer {name} removed"
    elif op == "op_type":
        node = rng.choice(list(g.node))
        new = rng.choice(["BogusOp", "Conv", "LSTM", "Loop"])
        desc, expect = f"{node.output[0]}: op_type {node.op_type} -> {new}", "either"
        node.op_type = new
    elif op == "dangling":
        node = rng.choice(list(g.node))
        node.input[0] = "does_not_exist"
        desc = f"{node.output[0]}: input 0 names no tensor"
    data = m.SerializeToString()
    if op == "bytes":
        kind = rng.choice(["truncate", "garbage", "empty", "flip", "json"])
        if kind == "truncate":
            cut = rng.randrange(1, len(data) - 1)
            data, desc = data[:cut], f"truncated at byte {cut} of {len(data)}"
        elif kind == "garbage":
            data, desc = bytes(rng.randrange(256) for _ in range(512)), "512 random bytes"
        elif kind == "empty":
            data, desc = b"", "empty file"
        elif kind == "flip":
            b = bytearray(data)
            for _ in range(8):
                b[rng.randrange(len(b))] = rng.randrange(256)
            data, desc, expect = bytes(b), "8 random bytes changed", "either"
        else:
            data, desc = b'{"layers": []}', "JSON text in a .onnx file"
    _ = onnx  # imported for its protobuf types
    f = _file("model.onnx")
    argv = rng.choice([["workloads", "show", f, "--json"],
                       ["evaluate", "--accelerator", "eyeriss", "--workload", f, "--optimizer", "heuristic", "--json"]])
    return Case("onnx", desc, argv, expect, {"model.onnx": data})


def gen_csv(rng, seeds: Seeds) -> Case:
    argv = _csv_argv(rng)
    lines = seeds.csv_text.splitlines()
    head, rows = lines[0], lines[1:]
    op = rng.choice(["cell", "cell", "cell", "header", "rows", "damage", "wide"])
    expect = "error"
    if op == "cell":
        r, c = rng.randrange(len(rows)), rng.randrange(1, 4)
        label, expect = rng.choice([("nan", "either"), ("inf", "either"), ("-inf", "either"), ("abc", "either"),
                                    ("", "either"), ("1e400", "either"), ("-1", "either"), ("1e308", "either"),
                                    ('"1,5"', "either")])
        cells = rows[r].split(",")
        cells[c] = label
        rows[r] = ",".join(cells)
        desc = f"row {r + 1} column {c} = {label!r}"
    elif op == "header":
        label, head, expect = rng.choice([("duplicate column", "arch,lat_a,lat_a,lat_c", "error"),
                                          ("empty column name", "arch,,lat_b,lat_c", "either"),
                                          ("header only", head, "error"),
                                          ("column lat_a renamed", "arch,x,lat_b,lat_c",
                                           "error" if any("lat_a" in a for a in argv) else "either")])
        if label == "header only":
            rows = []
        desc = label
    elif op == "rows":
        label, n = rng.choice([("one row", 1), ("two rows", 2), ("three rows", 3)])
        rows, desc, expect = rows[:n], label, "either"
        if n == 1:
            expect = "error"
    elif op == "wide":
        n = rng.choice([2000, 5000])
        head = head + "".join(f",x{i}" for i in range(n))
        rows = [r + ",1.0" * n for r in rows]
        desc, expect = f"{n} more constant columns", "either"
    else:
        desc, data, expect = _damage(rng, "\n".join([head, *rows]) + "\n", "csv")
        if desc.startswith("whole document"):
            expect = "error"
        if desc.startswith("truncated"):
            expect = "either"
        return Case("latency-csv", desc, argv, expect, {"table.csv": data})
    data = ("\n".join([head, *rows]) + "\n").encode()
    return Case("latency-csv", desc, argv, expect, {"table.csv": data})


def _csv_argv(rng) -> list:
    f = _file("table.csv")
    return rng.choice([["monotonicity", "--data", f, "--json"],
                       ["monotonicity", "--data", f, "--proxy", "lat_a", "--target", "lat_b", "--samples", "5",
                        "--json"],
                       ["monotonicity", "--data", f, "--columns", "lat_a,lat_b", "--json"]])


def gen_peer_data(rng, seeds: Seeds) -> Case:
    desc, data, expect = mutate_tree(rng, seeds.peer_data, "json", RESULT_SPEC)
    if desc.startswith("duplicate key") or "nesting" in desc:
        expect = "error"
    return Case("peer-data", f"scalesim.json (8 records): {desc}",
                ["validate", "scalesim", "--data", _file("scalesim.json"), "--json"], expect, {"scalesim.json": data})


def _run_files(seeds: Seeds) -> dict:
    return {p.name: p.read_bytes() for p in sorted(seeds.run_dir.iterdir())
            if p.is_file() and p.name in ("config.yaml", "journal.jsonl", "result.json", "accelerator.yaml")}


def gen_report(rng, seeds: Seeds) -> Case:
    files = _run_files(seeds)
    op = rng.choice(["tree", "tree", "tree", "whole", "missing"])
    if op == "missing":
        name = rng.choice(["result.json", "config.yaml", "journal.jsonl"])
        del files[name]
        desc, expect = f"run/{name} removed", "error" if name == "result.json" else "either"
        new = {}
    elif op == "whole":
        label, data = rng.choice([("null", b"null"), ("42", b"42"), ("'a string'", b'"s"'), ("[]", b"[]"),
                                  ("{}", b"{}"), ("NaN", b"NaN"), ("binary", bytes(range(256)))])
        desc, expect, new = f"run/result.json = {label}", "error", {"result.json": data}
    else:
        doc = json.loads(files["result.json"])
        op2 = rng.choice(["del_top", "tree"])
        if op2 == "del_top":
            key = rng.choice(list(doc))
            del doc[key]
            desc, data, expect = f"run/result.json: delete {key}", json.dumps(doc).encode(), "either"
        else:
            d, data, expect = mutate_tree(rng, doc, "json", RESULT_SPEC)
            desc = f"run/result.json: {d}"
            if d.startswith(("whole document", "UTF-16", "a latin-1", "invalid UTF-8", "NUL", "256 random",
                             "empty file", "duplicate key")) or "nesting" in d:
                expect = "error"
            if "= nan" in d or "= inf" in d or "= -inf" in d:
                expect = "either"  # refusing or reporting without NaN: bad-json catches a NaN
        new = {"result.json": data}
    out = {f"run/{k}": v for k, v in {**files, **new}.items()}
    return Case("run-report", desc, ["report", "{d}/run", "--json"], expect, out)


def gen_resume(rng, seeds: Seeds) -> Case:
    files = _run_files(seeds)
    files.pop("result.json", None)
    op = rng.choice(["journal", "journal", "journal", "config", "config", "args"])
    extra, expect = [], "either"
    if op == "journal":
        lines = files["journal.jsonl"].decode().splitlines(keepends=True)
        i = rng.randrange(len(lines))
        entry = json.loads(lines[i])
        label, new = rng.choice([
            ("null", "null\n"), ("42", "42\n"), ("[]", "[]\n"), ("{}", "{}\n"), ("'a string'", '"s"\n'),
            ("without x", json.dumps({k: v for k, v in entry.items() if k != "x"}) + "\n"),
            ("without loss", json.dumps({k: v for k, v in entry.items() if k != "loss"}) + "\n"),
            ("without status", json.dumps({k: v for k, v in entry.items() if k != "status"}) + "\n"),
            ("without i", json.dumps({k: v for k, v in entry.items() if k != "i"}) + "\n"),
            ("loss NaN", json.dumps({**entry, "loss": math.nan}) + "\n"),
            ("loss 'x'", json.dumps({**entry, "loss": "x"}) + "\n"),
            ("i = -1", json.dumps({**entry, "i": -1}) + "\n"),
            ("i = 10**9", json.dumps({**entry, "i": 10 ** 9}) + "\n"),
            ("i = 'a'", json.dumps({**entry, "i": "a"}) + "\n"),
            ("x = []", json.dumps({**entry, "x": []}) + "\n"),
            ("x = 'abc'", json.dumps({**entry, "x": "abc"}) + "\n"),
            ("x with a NaN", json.dumps({**entry, "x": [math.nan] * len(entry.get("x", [0]))}) + "\n"),
            ("status 'bogus'", json.dumps({**entry, "status": "bogus"}) + "\n"),
            ("torn binary-prefixed line", b"\x00\xff" + lines[i][: len(lines[i]) // 2].encode()),
            ("binary-prefixed full line", b"\x00\x01garbage" + lines[i].encode()),
            ("2000-deep nesting", _deep() + "\n"),
            ("duplicate key", lines[i].rstrip("\n")[:-1] + ',"i":5}\n'),
        ])
        lines[i] = new if isinstance(new, bytes) else new.encode()
        files["journal.jsonl"] = b"".join(ln if isinstance(ln, bytes) else ln.encode() for ln in lines)
        desc = f"run/journal.jsonl line {i + 1}: {label}"
    elif op == "config":
        import yaml
        cfg = yaml.safe_load(files["config.yaml"])
        sub = rng.choice(["whole", "budget", "tree"])
        if sub == "whole":
            label, data = rng.choice([("empty", b""), ("a list", b"- 1\n- 2\n"), ("a scalar", b"42\n"),
                                      ("null", b"null\n"), ("binary", bytes(range(256))), ("UTF-16",
                                      files["config.yaml"].decode().encode("utf-16"))])
            desc, expect = f"run/config.yaml = {label}", "error"
        elif sub == "budget":
            label, val = rng.choice([("'x'", "x"), ("4.5", 4.5), ("0", 0), ("-1", -1), ("10**12", 10 ** 12),
                                     ("nan", math.nan), ("null", None), ("[2]", [2])])
            cfg["budget"] = val
            data, desc, expect = yaml.safe_dump(cfg).encode(), f"run/config.yaml budget = {label}", "error"
        else:
            d, data, expect = mutate_tree(rng, cfg, "yaml", CONFIG_SPEC)
            desc = f"run/config.yaml: {d}"
            if "budget" in d and ("= 1e9" in d or "= 3.5" in d):
                expect = "error"
        files["config.yaml"] = data
    else:
        label, extra, expect = rng.choice([
            ("--resume with --out", ["--out", "{d}/other"], "error"),
            ("--resume with another --seed", ["--seed", "5"], "error"),
            ("--resume with --workload", ["--workload", "alexnet"], "error"),
            ("--resume with another --objective", ["--objective", "latency"], "error"),
            ("--resume with --budget", ["--budget", "3"], "either"),
            ("--resume of a missing folder", [], "error"),
        ])
        desc = label
        if label.endswith("missing folder"):
            return Case("run-resume", desc, ["search", "--resume", "{d}/nothing", "--workers", "1", "--quiet",
                                             "--json"], expect)
    argv = ["search", "--resume", "{d}/run", *extra, "--workers", "1", "--quiet", "--json"]
    return Case("run-resume", desc, argv, expect, {f"run/{k}": v for k, v in files.items()})


CLI_CASES = [
    # (argv, expectation); {s} is the seed folder
    (["map", "--accelerator", "eyeriss", "--layer", TINY_LAYER, "--seed", "-1", "--json"], "error"),
    (["map", "--accelerator", "eyeriss", "--layer", TINY_LAYER, "--budget", "0", "--json"], "error"),
    (["map", "--accelerator", "eyeriss", "--layer", TINY_LAYER, "--budget", "-5", "--json"], "error"),
    (["map", "--accelerator", "eyeriss", "--layer", TINY_LAYER, "--budget", str(10 ** 12), "--optimizer", "random",
      "--json"], "error"),
    (["map", "--accelerator", "eyeriss", "--layer", TINY_LAYER, "--seed", "1", "--seed", "2", "--json"], "error"),
    (["map", "--accelerator", "eyeriss", "--accelerator", "simba", "--layer", TINY_LAYER, "--json"], "error"),
    (["map", "--accelerator", "no-such-preset", "--layer", TINY_LAYER, "--json"], "error"),
    (["map", "--accelerator", "{s}", "--layer", TINY_LAYER, "--json"], "error"),
    (["map", "--accelerator", "{s}/missing.yaml", "--layer", TINY_LAYER, "--json"], "error"),
    (["map", "--accelerator", "eyeriss", "--layer", TINY_LAYER, "--seed", str(2 ** 70), "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "0", "--workers", "1", "--out", "{d}/o", "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "-3", "--workers", "1", "--out", "{d}/o", "--json"],
     "error"),
    (["search", "--workload", "{s}/tiny.json", "--optimizer", "auto", "--budget", "0", "--workers", "1", "--out",
      "{d}/o", "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "2", "--seed", "-1", "--workers", "1", "--out", "{d}/o",
      "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", str(10 ** 12), "--workers", "1", "--out", "{d}/o",
      "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "2", "--batch", "0", "--workers", "1", "--out", "{d}/o",
      "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "2", "--batch", str(10 ** 9), "--workers", "1", "--out",
      "{d}/o", "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "2", "--optimizer", "NoSuchOptimizer", "--workers", "1",
      "--out", "{d}/o", "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "2", "--mapper", "bogus", "--workers", "1", "--out",
      "{d}/o", "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "2", "--workers", "0", "--out", "{d}/o", "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "2", "--workers", "-1", "--out", "{d}/o", "--json"],
     "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "2", "--resolution", "0", "--workers", "1", "--out",
      "{d}/o", "--json"], "error"),
    (["search", "--space", "ofa-mbv3", "--min-accuracy", "nan", "--budget", "2", "--workers", "1", "--out", "{d}/o",
      "--json"], "error"),
    (["search", "--space", "ofa-mbv3", "--min-accuracy", "0.7", "--population", "0", "--budget", "2", "--workers",
      "1", "--out", "{d}/o", "--json"], "error"),
    (["search", "--space", "ofa-mbv3", "--min-accuracy", "0.7", "--generations", "-1", "--budget", "2", "--workers",
      "1", "--out", "{d}/o", "--json"], "error"),
    (["search", "--space", "ofa-mbv3", "--min-accuracy", "0.7", "--population", str(10 ** 9), "--budget", "2",
      "--workers", "1", "--out", "{d}/o", "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "2", "--out", "{d}/o", "--out", "{d}/p", "--workers", "1",
      "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "2", "--seed", "1", "--seed", "2", "--out", "{d}/o",
      "--workers", "1", "--json"], "error"),
    (["search", "--workload", "{s}/tiny.json", "--budget", "2", "--out", "{s}/tiny.json", "--workers", "1", "--json"],
     "error"),
    (["bench", "costmodel", "--mappings", "-5", "--json"], "error"),
    (["bench", "costmodel", "--mappings", "0", "--json"], "error"),
    (["bench", "costmodel", "--mappings", str(10 ** 12), "--json"], "error"),
    (["bench", "costmodel", "--mappings", "1000", "--repeats", "0", "--json"], "error"),
    (["bench", "costmodel", "--mappings", "1000", "--repeats", "1", "--threads", "0", "--json"], "error"),
    (["bench", "costmodel", "--mappings", "1000", "--repeats", "1", "--threads", "-1", "--json"], "error"),
    (["bench", "costmodel", "--mappings", "1000", "--repeats", "1", "--workload", "{s}/missing.json", "--json"],
     "error"),
    (["bench", "mapper", "--layers", "-1", "--json"], "error"),
    (["bench", "mapper", "--layers", "0", "--json"], "error"),
    (["bench", "mapper", "--layers", "1", "--accelerators", "no-such", "--json"], "error"),
    (["bench", "latency", "--samples", "-1", "--json"], "error"),
    (["bench", "latency", "--samples", "0", "--json"], "error"),
    (["bench", "latency", "--samples", "2", "--backends", "bogus:x", "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--proxy", "lat_a", "--target", "lat_b", "--threshold", "nan",
      "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--proxy", "lat_a", "--target", "lat_b", "--threshold", "2",
      "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--proxy", "lat_a", "--target", "lat_b", "--samples", "-1",
      "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--proxy", "lat_a", "--target", "lat_b", "--samples",
      str(10 ** 12), "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--proxy", "lat_a", "--target", "lat_b", "--repeats",
      str(10 ** 9), "--samples", "5", "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--proxy", "lat_a", "--target", "lat_b", "--confidence-z", "nan",
      "--samples", "5", "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--proxy", "lat_a", "--target", "lat_b", "--folds", "0",
      "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--proxy", "lat_a", "--target", "lat_b", "--slack", "nan",
      "--samples", "5", "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--proxy", "lat_a", "--target", "lat_a", "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--proxy", "nope", "--target", "lat_b", "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--columns", "lat_a,lat_a", "--json"], "either"),
    (["monotonicity", "--data", "{s}/latency.csv", "--data", "{s}/latency.csv", "--json"], "error"),
    (["monotonicity", "--data", "{s}/missing.csv", "--json"], "error"),
    (["monotonicity", "--data", "{s}", "--json"], "error"),
    (["evaluate", "--accelerator", "eyeriss", "--workload", "alexnet", "--resolution", "0", "--json"], "error"),
    (["evaluate", "--accelerator", "eyeriss", "--workload", "alexnet", "--resolution", "-32", "--json"], "error"),
    (["evaluate", "--accelerator", "eyeriss", "--workload", "alexnet", "--resolution", str(10 ** 7), "--json"],
     "error"),
    (["evaluate", "--accelerator", "eyeriss", "--workload", "{s}/tiny.json", "--budget", "0", "--json"], "error"),
    (["evaluate", "--accelerator", "eyeriss", "--workload", "{s}/tiny.json", "--seed", "-1", "--json"], "error"),
    (["evaluate", "--accelerator", "eyeriss", "--workload", "no_such_net", "--json"], "error"),
    (["evaluate", "--accelerator", "eyeriss", "--workload", "{s}/tiny.json", "--resolution", "224", "--json"], "error"),
    (["workloads", "show", "resnet18", "--resolution", str(10 ** 6), "--json"], "error"),
    (["workloads", "show", "resnet18", "--resolution", "-1", "--json"], "error"),
    (["workloads", "show", "resnet18", "--batch", "0", "--json"], "error"),
    (["workloads", "show", "resnet18", "--batch", "-1", "--json"], "error"),
    (["workloads", "show", "resnet18", "--batch", str(10 ** 15), "--json"], "error"),
    (["workloads", "show", "bert_base_layer", "--seq-len", "-1", "--json"], "error"),
    (["workloads", "show", "bert_base_layer", "--seq-len", str(10 ** 9), "--json"], "error"),
    (["workloads", "show", "resnet18", "--resolution", "1", "--json"], "either"),
    (["workloads", "show", "{s}/tiny.json", "--batch", "2", "--json"], "error"),
    (["latency", "--backend", "analytical:eyeriss", "--workload", "{s}/tiny.json", "--repeats", "3", "--json"],
     "error"),
    (["latency", "--backend", "torch-cpu", "--workload", "{s}/tiny.json", "--repeats", "-1", "--json"], "error"),
    (["latency", "--backend", "torch-cpu", "--workload", "{s}/tiny.json", "--repeats", "0", "--json"], "error"),
    (["latency", "--backend", "torch-cpu", "--workload", "{s}/tiny.json", "--warmup", "-1", "--json"], "error"),
    (["latency", "--backend", "torch-cpu", "--workload", "{s}/tiny.json", "--threads", "0", "--json"], "error"),
    (["latency", "--backend", "torch-cpu", "--workload", "{s}/tiny.json", "--repeats", str(10 ** 9), "--json"],
     "error"),
    (["latency", "--backend", "bogus:thing", "--workload", "{s}/tiny.json", "--json"], "error"),
    (["latency", "--backend", "analytical:no-such", "--workload", "{s}/tiny.json", "--json"], "error"),
    (["latency", "--backend", "lut:{s}/missing.yaml", "--workload", "{s}/tiny.json", "--json"], "error"),
    (["latency", "--backend", "remote:http://127.0.0.1:1", "--workload", "{s}/tiny.json", "--json"], "error"),
    (["latency", "--backend", "analytical:eyeriss", "--workload", "alexnet", "--resolution", "-1", "--json"], "error"),
    (["accuracy", "--space", "ofa-mbv3", "--arch", "{}", "--json"], "error"),
    (["accuracy", "--space", "ofa-mbv3", "--arch", "[]", "--json"], "error"),
    (["accuracy", "--space", "ofa-mbv3", "--arch", "null", "--json"], "error"),
    (["accuracy", "--space", "ofa-mbv3", "--arch", "not json", "--json"], "error"),
    (["accuracy", "--space", "ofa-mbv3", "--arch", "{s}/missing.json", "--json"], "error"),
    (["accuracy", "--space", "ofa-mbv3", "--arch", _deep(), "--json"], "error"),
    (["accuracy", "--space", "no-such-space", "--arch", "{}", "--json"], "error"),
    (["fpga", "--board", "zcu102", "--search", "--budget", "-1", "--workload", "{s}/tiny.json", "--json"], "error"),
    (["fpga", "--board", "zcu102", "--search", "--budget", str(10 ** 12), "--workload", "{s}/tiny.json", "--json"],
     "error"),
    (["fpga", "--board", "zcu102", "--preset", "zcu102-1", "--workload", "{s}/tiny.json", "--seed", "-1", "--json"],
     "error"),
    (["fpga", "--board", "no-such-board", "--preset", "zcu102-1", "--json"], "error"),
    (["fpga", "--preset", "zcu102-99", "--json"], "error"),
    (["fpga", "--board", "zcu102", "--preset", "zcu102-1", "--workload", "alexnet", "--resolution", "0", "--json"],
     "error"),
    (["fpga", "--board", "zcu102", "--design", "Tm=64,Tn=7,Tr=13,Tc=13", "--preset", "zcu102-1", "--json"], "error"),
    (["evaluate", "--accelerator", "eyeriss", "--workload", "{s}/tiny.json", "--cache-dir", "{s}/tiny.json",
      "--json"], "error"),
    (["evaluate", "--accelerator", "{s}/tiny.json", "--workload", "{s}/tiny.json", "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--heatmap", "{s}/no/such/dir/x.png", "--json"], "error"),
    (["monotonicity", "--data", "{s}/latency.csv", "--proxy", "lat_a", "--target", "lat_b", "--adapt", "--encoding",
      "bogus", "--samples", "10", "--json"], "error"),
    (["monotonicity", "--space", "ofa-mbv3", "--backends", "fpga:zcu102:zcu102-1,bogus:x", "--samples", "3",
      "--json"], "error"),
    (["monotonicity", "--space", "ofa-mbv3", "--backends", "fpga:zcu102:zcu102-1,fpga:zcu102:zcu102-2", "--samples",
      str(10 ** 9), "--json"], "error"),
    (["latency", "--backend", "analytical:", "--workload", "{s}/tiny.json", "--json"], "error"),
    (["latency", "--backend", "fpga:zcu102:zcu102-99", "--workload", "{s}/tiny.json", "--json"], "error"),
    (["latency", "--backend", "lut:", "--workload", "{s}/tiny.json", "--json"], "error"),
    (["latency", "--backend", "remote:not a url", "--workload", "{s}/tiny.json", "--json"], "error"),
    (["latency", "--backend", "fpga:zcu102:zcu102-1", "--workload", "{s}/tiny.json", "--json"], "either"),
    (["accuracy", "--net-config", "{s}/tiny.json", "--json"], "error"),
    (["accuracy", "--net-config", "{s}", "--json"], "error"),
    (["fpga", "--board", "{s}/tiny.json", "--preset", "zcu102-1", "--json"], "error"),
    (["workloads", "show", "{s}/token", "--json"], "error"),
    (["map", "--accelerator", "eyeriss", "--layer", TINY_LAYER, "--name", "a\nb\x00" + "x" * 5000, "--json"],
     "either"),
    (["validate", "scalesim", "--data", "{s}/missing.json", "--json"], "error"),
    (["validate", "scalesim", "--data", "{s}/tiny.json", "--json"], "error"),
    (["validate", "zigzag", "--data", "{s}/latency.csv", "--json"], "error"),
    (["report", "{s}", "--json"], "error"),
    (["report", "{s}/missing", "--json"], "error"),
    (["report", "{s}/tiny.json", "--json"], "error"),
    (["accelerators", "show", "{s}/latency.csv", "--json"], "error"),
    (["accelerators", "show", "{s}/tiny.json", "--json"], "error"),
    (["accelerators", "show", "/dev/zero", "--json"], "error"),
    (["workloads", "show", "/dev/zero", "--json"], "error"),
    (["workloads", "show", "{s}/latency.csv", "--json"], "error"),
    (["agent", "serve", "--backend", "analytical:eyeriss", "--token-file", "{s}/token", "--port", "70000", "--json"],
     "error"),
    (["agent", "serve", "--backend", "analytical:eyeriss", "--token-file", "{s}/token", "--port", "-1", "--json"],
     "error"),
    (["agent", "serve", "--backend", "analytical:eyeriss", "--token-file", "{s}/token", "--port", "0",
      "--max-seconds", "nan", "--json"], "error"),
    (["agent", "serve", "--backend", "analytical:eyeriss", "--token-file", "{s}/token", "--port", "0",
      "--max-request-bytes", "-1", "--json"], "error"),
    (["agent", "serve", "--backend", "analytical:eyeriss", "--token-file", "{s}/token_shared", "--port", "0",
      "--json"], "error"),
    (["agent", "serve", "--backend", "analytical:eyeriss", "--token-file", "{s}/token", "--port", "0",
      "--max-seconds", "1e300", "--json"], "error"),
]


_DELETE = object()


def _tree_case(fmt: str, base, kind: str, path, value, expect: str, argv, name: str, raw: str | None = None) -> Case:
    doc = copy.deepcopy(base)
    if value is _DELETE:
        del _get(doc, path[:-1])[path[-1]]
        return Case(fmt, f"probe: delete {_fmt_path(path)}", argv, expect, {name: _dump(doc, kind).encode()})
    _set(doc, path, SENTINEL if raw is not None else value)
    text = _dump(doc, kind)
    if raw is not None:
        text = text.replace(f'"{SENTINEL}"', raw).replace(SENTINEL, raw)
    if raw is None:
        label = repr(value) if len(repr(value)) <= 60 else f"an integer of {len(str(value))} digits"
    else:
        label = "alias bomb (10**9 values)" if raw.startswith("[&") else f"{raw.count('[')}-deep nesting"
    return Case(fmt, f"probe: {_fmt_path(path)} = {label}", argv, expect, {name: text.encode()})


def probe_cases(seeds: Seeds) -> list[Case]:
    """The known bad inputs (every one a past failure), each once (``generate`` draws them only by chance)."""
    import yaml
    out = []
    acc = yaml.safe_load(seeds.accelerators["eyeriss"]) if "eyeriss" in seeds.accelerators else None
    if acc is not None:
        a = ["map", "--accelerator", _file("acc.yaml"), "--layer", TINY_LAYER, "--optimizer", "heuristic", "--json"]
        text = _dump(acc, "yaml")
        out += [Case("accelerator-yaml", "probe: UTF-16 file", a, "error", {"acc.yaml": text.encode("utf-16")}),
                Case("accelerator-yaml", "probe: invalid UTF-8 bytes", a, "error",
                     {"acc.yaml": text.encode().replace(b"eyeriss", b"eyer\xffiss", 1)})]
        for path, value, expect in [
                (("energy_table",), [1, 2], "error"), (("energy_table",), 5, "error"),
                (("energy_table",), {"bogus": 1}, "error"), (("array", 0, "size"), 1e30, "error"),
                (("array", 0, "size"), 10 ** 400, "error"), (("array", 0, "size"), 10 ** 9, "either"),
                (("dram", "bw_bits_per_cycle"), 1e-300, "either"), (("clock_mhz",), math.nan, "error"),
                (("clock_mhz",), -1, "error"), (("clock_mhz",), 0, "error"), (("clock_mhz",), "fast", "error"),
                (("glb", "capacity_bytes"), -4096, "error"), (("bogus_field",), 1, "error"),
                (("glb", "bw_words_per_cycle"), _DELETE, "either")]:
            out.append(_tree_case("accelerator-yaml", acc, "yaml", path, value, expect, a, "acc.yaml"))
        for path in (("name",), ("notes",), ("array", 1, "loops", 0)):
            out.append(_tree_case("accelerator-yaml", acc, "yaml", path, None, "error", a, "acc.yaml", _alias_bomb()))
            out.append(_tree_case("accelerator-yaml", acc, "yaml", path, None, "error", a, "acc.yaml", _deep()))
    w = ["workloads", "show", _file("net.json"), "--json"]
    for path, value in [(("resolution",), -1), (("resolution",), "x"), (("layers",), "x"),
                        (("layers", 0, "dims", "K"), -1), (("layers", 0, "stride"), 0),
                        (("layers", 0, "dims", "C"), 10 ** 30)]:
        out.append(_tree_case("workload-json", seeds.workload, "json", path, value, "error", w, "net.json"))
    out.append(_tree_case("workload-json", seeds.workload, "json", ("name",), None, "error", w, "net.json", _deep()))
    if seeds.onnx is not None:
        out += _onnx_probes(seeds)
    if "ofa-mbv3" in seeds.net_configs:
        cfg = seeds.net_configs["ofa-mbv3"]
        n = ["workloads", "show", _file("net.config"), "--json"]
        for path, value, expect in [(("blocks", 1, "mobile_inverted_conv", "expand_ratio"), 0, "error"),
                                    (("blocks", 1, "mobile_inverted_conv", "expand_ratio"), math.nan, "error"),
                                    (("blocks", 1, "mobile_inverted_conv", "kernel_size"), -3, "error"),
                                    (("first_conv", "dilation"), 500, "either"),
                                    (("blocks",), "x", "error"),
                                    (("blocks", 2, "mobile_inverted_conv"), _DELETE, "error")]:
            out.append(_tree_case("net-config", cfg, "json", path, value, expect, n, "net.config"))
    for spec in ("K=1e20", f"K={2 ** 62}", "K=1,K=2"):
        out.append(Case("layer-spec", f"probe: --layer {spec}", ["map", "--accelerator", "eyeriss", "--layer", spec,
                                                                 "--json"], "error"))
    if seeds.run_dir is not None:
        files = _run_files(seeds)
        run = {f"run/{k}": v for k, v in files.items()}
        res = ["search", "--resume", "{d}/run", "--workers", "1", "--quiet", "--json"]
        lines = files["journal.jsonl"].splitlines(keepends=True)
        for label, line in [("null", b"null\n"), ("42", b"42\n"), ("[]", b"[]\n"), ("{}", b"{}\n")]:
            out.append(Case("run-resume", f"probe: journal line 1 = {label}", res, "either",
                            {**run, "run/journal.jsonl": line + b"".join(lines[1:])}))
        for label, data in [("empty", b""), ("a list", b"- 1\n"), ("a scalar", b"3\n")]:
            out.append(Case("run-resume", f"probe: config.yaml {label}", res, "error", {**run, "run/config.yaml": data}))
        cfg = yaml.safe_load(files["config.yaml"])
        for value in ("x", 4.5):
            out.append(Case("run-resume", f"probe: config.yaml budget = {value!r}", res, "error",
                            {**run, "run/config.yaml": yaml.safe_dump({**cfg, "budget": value}).encode()}))
        out.append(Case("run-resume", "probe: --resume with --out", [*res, "--out", "{d}/x"], "error", run))
        out.append(Case("run-resume", "probe: --resume with another --seed", [*res, "--seed", "5"], "error", run))
        for label, data in [("null", b"null"), ("42", b"42"), ("a string", b'"s"'), ("{}", b"{}")]:
            out.append(Case("run-report", f"probe: result.json = {label}", ["report", "{d}/run", "--json"], "error",
                            {**run, "run/result.json": data}))
    return out


def _onnx_probes(seeds: Seeds) -> list[Case]:
    from onnx import helper, numpy_helper
    import numpy as np

    def case(desc, edit):
        m = copy.deepcopy(seeds.onnx)
        expect = edit(m) or "error"
        return Case("onnx", f"probe: {desc}", ["workloads", "show", _file("model.onnx"), "--json"], expect,
                    {"model.onnx": m.SerializeToString()})

    def conv_attr(name, value):
        def edit(m):
            node = m.graph.node[0]
            for a in [a for a in node.attribute if a.name in (name, "pads" if name == "auto_pad" else name)]:
                node.attribute.remove(a)
            node.attribute.append(helper.make_attribute(name, value))
        return edit

    def dim(i, v):
        def edit(m):
            m.graph.input[0].type.tensor_type.shape.dim[i].dim_value = v
        return edit

    def scalar_matmul(m):
        for t in m.graph.initializer:
            if t.name == "w3":
                t.CopyFrom(numpy_helper.from_array(np.array(2.0, dtype=np.float32), "w3"))

    def opset(m):
        m.opset_import[0].version = 99999
        return "either"

    return [case("Conv group = 0", conv_attr("group", 0)), case("Conv auto_pad = BOGUS", conv_attr("auto_pad", "BOGUS")),
            case("scalar MatMul weight", scalar_matmul), case("batch 0", dim(0, 0)), case("batch -1", dim(0, -1)),
            case("spatial size 0", dim(2, 0)), case("opset 99999", opset)]


def gen_cli(rng, seeds: Seeds, k: int | None = None) -> Case:
    """A plain command line: the ``k``-th of ``CLI_CASES`` (``generate`` walks them in a seeded
    order, so that a run of a few hundred cases visits each), or a random one."""
    argv, expect = CLI_CASES[k % len(CLI_CASES)] if k is not None else rng.choice(CLI_CASES)
    return Case("cli-args", " ".join(argv)[:200], list(argv), expect)


# formats whose valid cases run a search or draw figures get this many times the time bound
TIMEOUT_SCALE = {"run-report": 2.0, "run-resume": 2.0}

GENERATORS = {
    # format -> (generator, weight, needs)
    "accelerator-yaml": (gen_accelerator, 6, None),
    "board-yaml": (gen_board, 2, None),
    "workload-json": (gen_workload, 4, None),
    "schedule-yaml": (gen_schedule, 2, None),
    "onnx": (gen_onnx, 3, "onnx"),
    "net-config": (gen_netconfig, 3, "net_configs"),
    "arch-json": (gen_arch, 2, "archs"),
    "layer-spec": (gen_layer, 3, None),
    "fpga-design": (gen_fpga_design, 3, None),
    "latency-csv": (gen_csv, 3, None),
    "peer-data": (gen_peer_data, 1, "peer_data"),
    "run-report": (gen_report, 1, "run_dir"),     # seconds per case: weighted down
    "run-resume": (gen_resume, 1, "run_dir"),
    "cli-args": (gen_cli, 6, None),
}


def generate(n: int, seed: int, seeds: Seeds, formats=None) -> list[Case]:
    """``n`` cases from ``random.Random(seed)``: formats drawn by weight (each at least once when
    ``n`` allows), each case from its own derived generator so that a case does not depend on
    which formats were drawn before it."""
    if not 0 <= n <= MAX_CASES:
        raise ValueError(f"cases: accepted 0 to {MAX_CASES:,}, got {n}")
    avail = {k: v for k, v in GENERATORS.items()
             if (formats is None or k in formats) and (v[2] is None or getattr(seeds, v[2]))}
    if not avail:
        return []
    rng = random.Random(seed)
    names = sorted(avail)
    order = names[: n] + rng.choices(names, weights=[avail[k][1] for k in names], k=max(0, n - len(names)))
    cli_order = list(range(len(CLI_CASES)))
    random.Random(f"{seed}:cli").shuffle(cli_order)
    cases, n_cli = [], 0
    for i, fmt in enumerate(order):
        sub = random.Random(f"{seed}:{i}:{fmt}")
        if fmt == "cli-args":
            cases.append(gen_cli(sub, seeds, cli_order[n_cli % len(cli_order)]))
            n_cli += 1
        else:
            cases.append(avail[fmt][0](sub, seeds))
    return cases


# ---- harness -----------------------------------------------------------------------------------

PRELOAD = ("codesign.cli", "torch", "onnx", "numpy", "scipy.stats", "yaml", "pydantic", "nevergrad",
           "matplotlib.pyplot", "models.importers", "models.importers.onnx_import", "models.netconfig",
           "models.zoo", "models.spaces", "models.predictors", "accelerators", "accelerators.kernel",
           "accelerators.fpga", "accelerators.fpga.search", "mappings.optimizers", "mappings.evaluate",
           "codesign.search", "codesign.report", "codesign.validation.monotonicity", "codesign.validation.latency",
           "codesign.validation.adaproxy")


def preload(log=None) -> list[str]:
    """Import the heavy modules once so that every forked case starts warm (no kernel is run: a
    numba or torch thread pool started here would not survive a fork)."""
    import importlib
    failed = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - a broken module shows up in the cases that use it
            failed.append(f"{name}: {type(e).__name__}: {e}")
    try:  # the font cache and the PNG writer, once
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.plot([0, 1], [0, 1])
        ax.set_title("x")
        fig.savefig(io.BytesIO(), format="png")
        plt.close(fig)
    except Exception as e:  # noqa: BLE001
        failed.append(f"matplotlib: {type(e).__name__}: {e}")
    if log:
        for f in failed:
            log(f"preload {f}")
    return failed


def _child(argv: list, cwd: Path, out_path: Path, err_path: Path, memory: int | None) -> None:
    """In the forked child: run the CLI and exit with its code; never returns."""
    rc = 1
    try:
        os.setpgid(0, 0)
        os.chdir(cwd)
        if memory:
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        fd_in = os.open(os.devnull, os.O_RDONLY)
        fd_out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        fd_err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd_in, 0)
        os.dup2(fd_out, 1)
        os.dup2(fd_err, 2)
        # whatever sys.stdout / sys.stderr were (a test runner's capture), write to the files
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from codesign.cli import main
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # noqa: BLE001 - what a user would see: a traceback
            traceback.print_exc()
            rc = 1
    except BaseException:  # noqa: BLE001
        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
        os._exit(int(rc) & 0xFF if isinstance(rc, int) else 1)


def _spawn(argv, cwd: Path, memory: int | None):
    out_path, err_path = cwd / ".stdout", cwd / ".stderr"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(argv, cwd, out_path, err_path, memory)
    return pid, out_path, err_path


def _reap(pid: int, status: int) -> int:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return -1


def _kill_group(pid: int, alive: bool = False) -> None:
    """SIGKILL the case's process group (the child made it, its own id); with ``alive``, the
    not yet reaped child itself too, in case it had not made the group yet."""
    targets = [lambda: os.killpg(pid, signal.SIGKILL)]
    if alive:
        targets.append(lambda: os.kill(pid, signal.SIGKILL))
    for target in targets:
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass


def run_child(argv, cwd, *, timeout: float = DEFAULT_TIMEOUT_S, memory: int | None = CHILD_MEMORY_BYTES) -> dict:
    """Run one command line in a forked child; ``{"rc", "stdout", "stderr", "seconds", "timed_out"}``."""
    cwd = Path(cwd)
    t0 = time.monotonic()
    pid, out_path, err_path = _spawn(argv, cwd, memory)
    timed_out = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = _reap(pid, status)
            break
        if time.monotonic() - t0 > timeout:
            _kill_group(pid, alive=True)
            os.waitpid(pid, 0)
            rc, timed_out = None, True
            break
        time.sleep(0.02)
    _kill_group(pid)  # grandchildren left behind
    return {"rc": rc, "stdout": _read(out_path), "stderr": _read(err_path),
            "seconds": time.monotonic() - t0, "timed_out": timed_out}


def _read(p: Path, limit: int = 1 << 20) -> str:
    try:
        with open(p, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def _strict_json(text: str) -> str | None:
    """None when ``text`` is one strict JSON document (no NaN / Infinity), else why not."""
    def bad(name):
        raise ValueError(f"{name} in the output")
    try:
        json.loads(text, parse_constant=bad)
    except ValueError as e:
        return str(e)[:200]
    return None


def _error_lines_problem(stderr: str) -> str | None:
    """None when stderr ends in exactly one error line (argparse's usage lines and progress bars
    before it are tolerated), else what is wrong."""
    lines = [ln for ln in stderr.replace("\r", "\n").split("\n") if ln.strip()]
    errs = [ln for ln in lines if ERROR_LINE.match(ln)]
    if not lines:
        return "exit 2 with nothing on stderr"
    if len(errs) != 1:
        return f"{len(errs)} error lines"
    if not ERROR_LINE.match(lines[-1]):
        return f"the error line is not the last line (last: {lines[-1][:120]!r})"
    others = [ln for ln in lines[:-1] if not (ln.startswith("usage:") or ln.startswith(" ") or "%|" in ln
                                               or "it/s" in ln or "s/it" in ln)]
    if others:
        return f"other lines on stderr before the error: {others[0][:120]!r}"
    return None


def classify(case: Case, res: dict) -> tuple[str, str]:
    """(category, detail) of a finished case."""
    rc, err = res["rc"], res["stderr"]
    if res["timed_out"]:
        return "hang", f"still running after {res['seconds']:.1f} s"
    if "Traceback (most recent call last)" in err or rc not in (0, 2, 130):
        tail = [ln for ln in err.strip().splitlines() if ln.strip()]
        return "traceback", f"rc {rc}: {tail[-1][:200] if tail else '(no stderr)'}"
    if rc == 0:
        if case.expect == "error":
            return "silently-accepted", "exit 0 for a bad input"
        if "--json" in case.argv:
            why = _strict_json(res["stdout"])
            if why:
                return "bad-json", why
        return "ok", "exit 0"
    if rc == 2:
        why = _error_lines_problem(err)
        if why:
            return "multi-line", why
        last = [ln for ln in err.splitlines() if ln.strip()][-1]
        return "ok", last[:200]
    return "ok", f"rc {rc}"


def _materialize(case: Case, d: Path, seeds: Seeds) -> list:
    for rel, data in case.files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return [a.replace("{d}", str(d)).replace("{s}", str(seeds.dir)) for a in case.argv]


def run_cases(cases: list[Case], seeds: Seeds, workdir, *, timeout: float = DEFAULT_TIMEOUT_S, jobs: int = 2,
              memory: int | None = CHILD_MEMORY_BYTES, keep: bool = False, progress=None) -> list[dict]:
    """Run every case, ``jobs`` at a time; one record per case, in order."""
    workdir = Path(workdir)
    pending = list(enumerate(cases))[::-1]
    running: dict[int, tuple] = {}
    records: list = [None] * len(cases)
    os.environ.pop("CODESIGN_MAPPING_CACHE", None)
    os.environ.setdefault("MPLBACKEND", "Agg")
    while pending or running:
        while pending and len(running) < jobs:
            i, case = pending.pop()
            d = workdir / f"case{i:05d}"
            d.mkdir(parents=True, exist_ok=True)
            argv = _materialize(case, d, seeds)
            pid, out_p, err_p = _spawn(argv, d, memory)
            running[pid] = (i, case, d, argv, out_p, err_p, time.monotonic())
        finished = []
        for pid, (i, case, d, argv, out_p, err_p, t0) in running.items():
            done, status = os.waitpid(pid, os.WNOHANG)
            elapsed = time.monotonic() - t0
            if done:
                finished.append((pid, _reap(pid, status), False, elapsed))
            elif elapsed > timeout * TIMEOUT_SCALE.get(case.format, 1.0):
                _kill_group(pid, alive=True)
                os.waitpid(pid, 0)
                finished.append((pid, None, True, elapsed))
        for pid, rc, timed_out, elapsed in finished:
            i, case, d, argv, out_p, err_p, _ = running.pop(pid)
            _kill_group(pid)
            res = {"rc": rc, "stdout": _read(out_p), "stderr": _read(err_p), "seconds": elapsed,
                   "timed_out": timed_out}
            cat, detail = classify(case, res)
            records[i] = {"index": i, **case.to_dict(), "argv_run": argv, "rc": rc, "category": cat,
                          "detail": detail, "seconds": round(elapsed, 3),
                          "stderr_tail": res["stderr"][-2000:] if cat != "ok" else res["stderr"][-300:]}
            if not keep:
                shutil.rmtree(d, ignore_errors=True)
            if progress:
                progress(records[i])
        if not finished:
            time.sleep(0.01)
    return records


def summarize(records: list[dict]) -> dict:
    """Counts per format and category, and the totals."""
    per: dict = {}
    for r in records:
        row = per.setdefault(r["format"], {c: 0 for c in CATEGORIES})
        row[r["category"]] += 1
    total = {c: sum(row[c] for row in per.values()) for c in CATEGORIES}
    return {"formats": per, "total": total, "cases": len(records),
            "failures": sum(total[c] for c in FAILURES),
            "seconds": round(sum(r["seconds"] for r in records), 1)}


def format_text(result: dict, show: int | None = None) -> str:
    show = result.get("show", 20) if show is None else show
    s = result["summary"]
    cols = CATEGORIES
    w = max([len("format"), *(len(f) for f in s["formats"])])
    lines = [f"{'format':<{w}} " + " ".join(f"{c:>17}" for c in cols)]
    for f, row in sorted(s["formats"].items()):
        lines.append(f"{f:<{w}} " + " ".join(f"{row[c]:>17}" for c in cols))
    lines.append(f"{'total':<{w}} " + " ".join(f"{s['total'][c]:>17}" for c in cols))
    lines.append(f"{s['cases']} cases, {s['failures']} failures, seed {result['seed']}, "
                 f"{result['wall_seconds']:.1f} s wall")
    fails = [r for r in result["records"] if r["category"] != "ok"]
    if fails:
        lines.append("")
        lines.append(f"first {min(show, len(fails))} failures (reproduce: codesign ARGV, with the files described):")
    for r in fails[:show]:
        lines.append(f"- [{r['category']}] {r['format']}: {r['mutation']} (expect {r['expect']})")
        lines.append(f"    codesign {' '.join(_quote(a) for a in r['argv'])}")
        for name, desc in r["files"].items():
            lines.append(f"    {{d}}/{name}: {desc[:160]!r}")
        lines.append(f"    -> {r['detail']}")
    for n in result.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _quote(a: str) -> str:
    import shlex
    a = a if len(a) <= 160 else a[:150] + f"...({len(a)} chars)"
    return shlex.quote(a)


def fuzz(cases: int = 300, seed: int = 0, *, timeout: float = DEFAULT_TIMEOUT_S, jobs: int = 2, formats=None,
         workdir=None, keep: bool = False, memory: int | None = CHILD_MEMORY_BYTES, probes: bool = False,
         log=None) -> dict:
    """Prepare the seeds, generate ``cases`` cases from ``seed`` (after the issue's probes, with
    ``probes``) and run them; the result dict."""
    t0 = time.monotonic()
    preload_failed = preload(log)
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="codesign-fuzz-")) if own else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    try:
        need_run = formats is None or bool({"run-report", "run-resume"} & set(formats))
        seeds = prepare_seeds(root / "seeds", run_dir=need_run, log=log)
        todo = generate(cases, seed, seeds, formats)
        if probes:
            todo = [c for c in probe_cases(seeds) if formats is None or c.format in formats] + todo
        progress = None
        if log:
            done = []

            def progress(rec):
                done.append(rec["category"] != "ok")
                if len(done) % 50 == 0 or len(done) == len(todo):
                    log(f"{len(done)}/{len(todo)} cases, {sum(done)} failures")
        records = run_cases(todo, seeds, root / "cases", timeout=timeout, jobs=jobs, memory=memory, keep=keep,
                            progress=progress)
    finally:
        if own and not keep:
            shutil.rmtree(root, ignore_errors=True)
    return {"seed": seed, "cases": cases, "timeout_s": timeout, "jobs": jobs, "wall_seconds": time.monotonic() - t0,
            "notes": seeds.notes + [f"preload {p}" for p in preload_failed]
            + ([f"files kept in {root}"] if keep else []),
            "summary": summarize(records), "records": records}


# ---- command line ------------------------------------------------------------------------------

def _positive_int(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer from {lo:,} to {hi:,}, got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is out of range: accepted {lo:,} to {hi:,}")
        return v
    return parse


def _timeout(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and 0.5 <= v <= 3600):
        raise argparse.ArgumentTypeError(f"expected seconds from 0.5 to 3600, got {text!r}")
    return v


def add_arguments(p) -> None:
    p.add_argument("--cases", type=_positive_int(0, MAX_CASES), default=300, help="cases to run (default 300)")
    p.add_argument("--seed", type=_positive_int(0, 2 ** 63 - 1), default=0, help="generator seed (default 0)")
    p.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT_S,
                   help=f"seconds a case may run before it counts as a hang (default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--jobs", type=_positive_int(1, MAX_JOBS), default=2, help="cases run at a time (default 2)")
    p.add_argument("--formats", metavar="F,...", help="only these formats: " + ", ".join(GENERATORS))
    p.add_argument("--show", type=_positive_int(0, 10_000), default=20, help="failures to print (default 20)")
    p.add_argument("--keep", metavar="DIR", help="keep every case's files and output under DIR")
    p.add_argument("--probes", action="store_true", help="also run each known bad input once")


def run(args) -> dict:
    from models.errors import CodesignError
    formats = None
    if args.formats:
        formats = [f.strip() for f in args.formats.split(",") if f.strip()]
        bad = [f for f in formats if f not in GENERATORS]
        if bad or not formats:
            raise CodesignError(f"--formats: unknown {', '.join(bad) or 'empty list'} (known: {', '.join(GENERATORS)})")
    res = fuzz(args.cases, args.seed, timeout=args.timeout, jobs=args.jobs, formats=formats,
               workdir=args.keep, keep=bool(args.keep), probes=args.probes,
               log=None if getattr(args, "json", False) else (lambda m: print(m, file=sys.stderr)))
    res["show"] = args.show
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m codesign.bench.fuzz", description=HELP)
    add_arguments(p)
    p.add_argument("--json", action="store_true", help="every case and its verdict as JSON")
    args = p.parse_args(argv)
    try:
        res = run(args)
    except Exception as e:  # noqa: BLE001 - only CodesignError is expected here
        from models.errors import CodesignError
        if isinstance(e, CodesignError):
            print(f"codesign: error: {e}", file=sys.stderr)
            return 2
        raise
    if args.json:
        sys.stdout.write(json.dumps(res, indent=1, allow_nan=False, default=str) + "\n")
    else:
        print(format_text(res, show=args.show))
    return 1 if res["summary"]["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
