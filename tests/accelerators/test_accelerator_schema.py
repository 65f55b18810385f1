"""Schemas of the hardware inputs: accelerator YAML, energy tables, FPGA boards and designs.

Every bad input is one typed error line that names the file, the field, the value and what is
accepted, raised before any work; the CLI turns it into ``codesign: error: ...`` and exit 2.
"""
import copy
import json
import math
import re
import time

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from accelerators import accelerator_from_dict, load_accelerator, load_energy_table, preset_names
from accelerators import schema as S
from accelerators.fpga import FPGAError, HotNASDesign, Zhang15Design, load_board
from accelerators.fpga import board_schema as B
from accelerators.fpga.boards import board_from_dict
from accelerators.fpga.zhang15 import DTYPES
from codesign.cli import main
from models.errors import AcceleratorError

BASE = {
    "name": "t", "array": [{"size": 4, "loops": ["K"]}],
    "rf": {"capacity_bytes": 64}, "glb": {"capacity_bytes": 4096, "bw_words_per_cycle": 8},
    "dram": {"bw_words_per_cycle": 2},
}
BOARD = {"name": "b", "dsp": 100, "bram36": 100, "lut": 1000, "ff": 2000, "clock_mhz": 100,
         "ddr_bandwidth_gbs": 2.0, "mem_port_bits": 256}


def _set(path, value):
    def mutate(d):
        *head, last = path
        for k in head:
            d = d[k]
        d[last] = value
    return mutate


# ---- accelerator description -----------------------------------------------------------------
BAD_DESCRIPTIONS = [
    (_set(["array", 0, "size"], 1e30),
     r"array\[0\]\.size: 'size' must be <= 65,536; accepted 1 to 65,536 PEs \(got 1e\+30\)"),
    (_set(["array", 0, "size"], 10 ** 400), r"array\[0\]\.size: 'size' must be <= 65,536"),
    (_set(["array", 0, "size"], True), r"'size' must be an integer, not bool"),
    (_set(["array", 0, "size"], "12"), r"'size' must be an integer, not the text '12'"),
    (_set(["array", 0, "size"], 2.5), r"'size' must be an integer; accepted 1 to"),
    (_set(["array"], [{"size": 65536, "loops": ["K"]}, {"size": 65536, "loops": ["C"]}]),
     r"array: 65536 x 65536 = 4,294,967,296 PEs in all; accepted at most 16,777,216"),
    (_set(["array", 0, "loops"], ["K", "K"]), "listed twice"),
    (_set(["array", 0, "fused"], "yes"), "'fused' must be true or false"),
    (_set(["array", 0, "extra"], 1), r"array\[0\]\.extra: unknown field \(known: size, loops, fused\)"),
    (_set(["dram", "bw_words_per_cycle"], 1e-300),
     r"dram\.bw_words_per_cycle: 'bw_words_per_cycle' must be >= 1e-06; accepted 1e-06 to 1e\+12 words per cycle"),
    (_set(["dram", "bw_words_per_cycle"], float("nan")), "'bw_words_per_cycle' must be a finite number"),
    (_set(["dram", "bw_words_per_cycle"], None), "'bw_words_per_cycle' must be a number, not NoneType"),
    (_set(["glb", "bw_bits_per_cycle"], 1e13), r"glb: give one of bw_words_per_cycle, bw_bits_per_cycle, not several"),
    (_set(["rf", "capacity_bytes"], 2 ** 41), r"rf\.capacity_bytes: 'capacity_bytes' must be <= 1,099,511,627,776"),
    (_set(["rf", "capacity_bytes"], {"W": 2 ** 40, "I": 2 ** 40}), "2,199,023,255,552 bytes in all"),
    (_set(["rf", "capacity_bytes"], {"W": 0}), r"rf\.capacity_bytes\.W: 'W' must be > 0"),
    (_set(["rf", "capacity_bytes"], {"W": None, "I": 8}), r"rf\.capacity_bytes\.W: 'W' must be an integer, not NoneType"),
    (_set(["rf", "read_energy_pj"], 1.0), r"rf\.write_energy_pj: missing field \(give both energies or neither\)"),
    (_set(["clock_mhz"], 0), "clock_mhz: 'clock_mhz' must be > 0; accepted 0.001 to 100000 MHz"),
    (_set(["clock_mhz"], float("inf")), "'clock_mhz' must be a finite number"),
    (_set(["mac_energy_pj"], 1e300), r"mac_energy_pj: 'mac_energy_pj' must be <= 1e\+06; accepted 0 to 1e\+06 pJ"),
    (_set(["noc_energy_pj"], -1), "'noc_energy_pj' must be >= 0"),
    (_set(["word_bits"], {"W": 8, "I": 8, "O": 65}), "'O' must be <= 64; accepted 1 to 64 bits"),
    (_set(["word_bits"], True), "'word_bits' must give W, I and O"),
    (_set(["array_timing"], {"kind": "systolic", "stationary": "W", "setup_cycles": 10 ** 9}),
     r"array_timing\.setup_cycles: 'setup_cycles' must be <= 1,000,000"),
    (_set(["name"], ["x"]), "name: 'name' must be a string, not list"),
    (_set(["name"], "a\x1bb"), "control character"),
    (_set(["notes"], "x" * 20_000), "accepted at most 10,000"),
    (_set(["energy_table"], ["a", "b"]), "energy_table: 'energy_table' must be a string, not list: the name of a known"),
    (_set(["energy_table"], {"a": 1}), "'energy_table' must be a string, not dict"),
    (_set(["energy_table"], 3), "'energy_table' must be a string, not int"),
    (_set(["energy_table"], "nope"), r"src: energy_table: unknown energy table 'nope' \(known: eyeriss-65nm"),
    (_set(["rf"], [1]), r"rf: expected a mapping \(got \[1\]\)"),
]


def test_a_null_energy_per_data_space_is_refused():
    d = load_accelerator("eyeriss").to_dict()
    d["glb"] = {**d["glb"], "read_energy_pj": {"W": None, "I": 1.0}, "write_energy_pj": {"W": 1.0, "I": 1.0}}
    with pytest.raises(AcceleratorError, match=r"src: glb\.read_energy_pj\.W: 'W' must be a number, not NoneType"):
        accelerator_from_dict(d, "src")


@pytest.mark.parametrize("mutate, msg", BAD_DESCRIPTIONS)
def test_bad_descriptions_name_the_field_and_the_range(mutate, msg):
    d = copy.deepcopy(BASE)
    mutate(d)
    with pytest.raises(AcceleratorError, match=msg) as e:
        accelerator_from_dict(d, "src")
    assert str(e.value).startswith("src: ") and "\n" not in str(e.value)


def test_numbers_keep_their_type_and_numpy_scalars_are_numbers():
    a = accelerator_from_dict({**BASE, "clock_mhz": 250, "array": [{"size": 8.0, "loops": "K"}]})
    assert a.clock_mhz == 250 and type(a.clock_mhz) is int
    assert a.array[0].size == 8 and type(a.array[0].size) is int and a.array[0].loops == ("K",)
    b = accelerator_from_dict({**BASE, "array": [{"size": np.int64(8), "loops": ["K"]}],
                               "dram": {"bw_words_per_cycle": np.float64(2.5)}})
    assert type(b.array[0].size) is int and b.dram.bw_words_per_cycle == 2.5


def test_bounds_are_inclusive_and_presets_are_far_inside():
    d = copy.deepcopy(BASE)
    d["array"] = [{"size": S.MAX_ARRAY_DIM_SIZE, "loops": ["K"]}, {"size": 256, "loops": ["C"]}]
    d["glb"] = {"capacity_bytes": S.MAX_CAPACITY_BYTES, "bw_words_per_cycle": S.MAX_BW}
    d["dram"] = {"bw_words_per_cycle": S.MIN_BW}
    a = accelerator_from_dict(d)
    assert a.num_pes == S.MAX_PES and a.glb.capacity_bytes == 2 ** 40
    for name in preset_names():
        acc = load_accelerator(name)
        assert acc.num_pes <= S.MAX_PES // 100 and acc.clock_mhz < S.MAX_CLOCK_MHZ


HEAD, RATIOS = "name: x\n", "{rf: 1, noc: 2, glb: 6, dram: 200"


def test_energy_table_yaml_has_a_schema(tmp_path):
    good = tmp_path / "t.yaml"
    good.write_text("name: mine\nmac_pj: 0.5\nmac_ref_bits: 8\nratios: {rf: 1, noc: 2, glb: 6, dram: 200}\n"
                    "reference_bytes: {glb: 65536}\n")
    t = load_energy_table(str(good))
    assert t.name == "mine" and t.mac_energy_pj({"W": 8, "I": 8}) == 0.5 and t.reference_bytes == {"glb": 65536}
    acc = accelerator_from_dict({**BASE, "energy_table": str(good)})
    assert acc.energy_table == "mine" and acc.dram.read_energy_pj == 100.0
    for body, msg in [
        (f"{HEAD}mac_pj: .inf\nmac_ref_bits: 16\nratios: {RATIOS}}}\n", "mac_pj: 'mac_pj' must be a finite"),
        (f"{HEAD}mac_pj: 1.0\nmac_ref_bits: 16\nratios: {{rf: 1, noc: 2, glb: 6}}\n", r"ratios\.dram: missing field"),
        (f"{HEAD}mac_pj: 1.0\nmac_ref_bits: 16\nratios: {RATIOS}, l3: 9}}\n", r"ratios\.l3: unknown"),
        (f"{HEAD}mac_pj: 1.0\nmac_ref_bits: 0\nratios: {RATIOS}}}\n", "'mac_ref_bits' must be > 0"),
        ("- 1\n", "expected a mapping at top level"),
    ]:
        bad = tmp_path / f"bad{len(body)}.yaml"
        bad.write_text(body)
        with pytest.raises(AcceleratorError, match=msg):
            load_energy_table(str(bad))
        with pytest.raises(AcceleratorError, match=r"^src: energy_table: energy table .*bad\d+\.yaml: "):
            accelerator_from_dict({**BASE, "energy_table": str(bad)}, "src")
    for bad in (["a"], {"a": 1}, 3, None):
        with pytest.raises(AcceleratorError, match="an energy table is the name of a known table"):
            load_energy_table(bad)


def test_odd_names_are_unknown_not_crashes():
    for name in ("x" * 5000, "a\x00b", "../presets/eyeriss"):
        with pytest.raises(AcceleratorError, match="unknown accelerator"):
            load_accelerator(name)
    with pytest.raises(AcceleratorError, match="not list"):
        load_accelerator(["eyeriss"])


# ---- CLI: hostile files are one line, exit 2, fast --------------------------------------------
def _bomb() -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(8):
        p, c = chr(97 + i), chr(98 + i)
        lines.append(f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]")
    return "\n".join(lines) + "\n"


_ACC = yaml.safe_dump(BASE, sort_keys=False)
_BOARD = yaml.safe_dump(BOARD, sort_keys=False)
HOSTILE = [
    ("utf16", _ACC.encode("utf-16"), "UTF-16"),
    ("bytes", _ACC.encode() + b"notes: caf\xe9\n", r"not UTF-8 text \(byte 0xe9"),
    ("bomb", _bomb().encode(), "YAML aliases that multiply"),
    ("deep", ("a: " + "[" * 2000 + "]" * 2000 + "\n").encode(), "nested deeper than 64 levels"),
    ("dup", (_ACC + "name: again\n").encode(), "duplicate key 'name'"),
    ("huge", _ACC.replace("size: 4", "size: 1.0e+30").encode(), r"array\[0\]\.size: 'size' must be <= 65,536"),
    ("hugetext", _ACC.replace("size: 4", "size: 1e30").encode(), "not the text '1e30'"),
    ("tiny", _ACC.replace("bw_words_per_cycle: 2", "bw_words_per_cycle: 1.0e-300").encode(), "must be >= 1e-06"),
    ("nan", _ACC.replace("bw_words_per_cycle: 2", "bw_words_per_cycle: .nan").encode(), "must be a finite number"),
    ("bool", _ACC.replace("size: 4", "size: true").encode(), "not bool"),
    ("table", (_ACC + "energy_table: [a, b]\n").encode(), "'energy_table' must be a string"),
    ("top", b"- 1\n- 2\n", "expected a mapping at top level"),
]


@pytest.mark.parametrize("name, content, msg", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_cli_hostile_accelerator_files(capsys, tmp_path, name, content, msg):
    p = tmp_path / f"{name}.yaml"
    p.write_bytes(content)
    t0 = time.perf_counter()
    assert main(["evaluate", "--accelerator", str(p), "--workload", "resnet18"]) == 2
    assert time.perf_counter() - t0 < 5.0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"codesign: error: {p}") and "Traceback" not in err
    assert re.search(msg, err), err


@pytest.mark.parametrize("change, msg", [
    (("dsp: 100", "dsp: -3"), "dsp: 'dsp' must be > 0; accepted 1 to 100,000 DSP slices"),
    (("dsp: 100", "dsp: 1.0e+30"), "'dsp' must be <= 100,000"),
    (("clock_mhz: 100", "clock_mhz: .nan"), "clock_mhz: 'clock_mhz' must be a finite number"),
    (("ddr_bandwidth_gbs: 2.0", "ddr_bandwidth_gbs: 1.0e-300"), "'ddr_bandwidth_gbs' must be >= 0.001"),
    (("lut: 1000", "lut: '1000'"), "'lut' must be an integer, not the text '1000'"),
    (("mem_port_bits: 256", "mem_port_bits: 65536"), "'mem_port_bits' must be <= 2,048"),
    (("ff: 2000", "ff: 2000\ndsp: 5"), "duplicate key 'dsp'"),
    (("ff: 2000", "ff: 2000\ndsps: 5"), "dsps: unknown field (known: name"),
    (("ff: 2000", "ff: 2000\npower: [1]"), "power: expected a mapping"),
])
def test_cli_bad_board_files(capsys, tmp_path, change, msg):
    p = tmp_path / "board.yaml"
    p.write_text(_BOARD.replace(*change))
    assert main(["fpga", "--board", str(p), "--design", "Tm=4,Tn=4,Tr=8,Tc=8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"codesign: error: {p}: ") and msg in err, err


def test_board_schema_and_limits():
    b = board_from_dict(BOARD)
    assert b.dsp == 100 and type(b.clock_mhz) is float and b.power.static_w == 0.0
    assert board_from_dict({**BOARD, "dsp": 100.0}).dsp == 100
    assert load_board("zcu102").with_limits(dsp=2000).dsp == 2000
    for kw, msg in [({"dsp": 0}, "'dsp' must be > 0"), ({"clock_mhz": float("nan")}, "finite"),
                    ({"mem_port_bits": True}, "not bool"), ({"dsps": 1}, "unknown key")]:
        with pytest.raises(FPGAError, match=msg):
            load_board("zcu102").with_limits(**kw)
    with pytest.raises(FPGAError, match="unknown board"):
        load_board("x" * 5000)
    assert set(DTYPES) == set(B.ZHANG15_DTYPES)


# ---- FPGA designs ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, msg", [
    ("Tm=1,Tm=2,Tn=1,Tr=1,Tc=1", "Tm given twice"),
    (f"Tm={10 ** 30},Tn=1,Tr=1,Tc=1", "Tm: 'Tm' must be <= 65,536; accepted 1 to 65,536 MACs"),
    ("Tm=10**30,Tn=1,Tr=1,Tc=1", "is not an integer"),
    ("Tm=1.5,Tn=1,Tr=1,Tc=1", "is not an integer"),
    ("Tm=\u0663,Tn=1,Tr=1,Tc=1", "is not an integer"),
    ("Tm=0,Tn=1,Tr=1,Tc=1", "'Tm' must be > 0"),
    ("Tm=1,Tn=1,Tr=1", "Tc: missing field"),
    ("Tm=1,Tn=1,Tr=1,Tc=1,Tq=2", "Tq: unknown field"),
    ("Tm=1,Tn=1,Tr=1,Tc=1,dtype=fp8", "dtype 'fp8' must be one of fp32, fix16"),
    ("=3", "is not a parameter name"),
    ("Tm=1," * 300, "accepted at most 1,000"),
])
def test_bad_zhang15_design_strings(text, msg):
    with pytest.raises(FPGAError, match=msg):
        Zhang15Design.parse(text)


def test_design_checks_and_contradictions():
    with pytest.raises(FPGAError, match="contradicts the dtype fp32"):
        Zhang15Design.parse("Tm=1,Tn=1,Tr=1,Tc=1,dtype=fix16", dtype="fp32")
    assert Zhang15Design.parse("Tm=1,Tn=1,Tr=1,Tc=1", dtype="fix16").dtype == "fix16"
    with pytest.raises(FPGAError, match="'Wp' must be <= 128"):
        HotNASDesign.parse("Tm=4,Tn=4,Tr=8,Tc=8,Tmd=0,Ip=4,Op=4,Wp=99999")
    with pytest.raises(FPGAError, match="'Tk' must be > 0"):
        HotNASDesign(4, 4, 8, 8, 0, 1, 1, 1, Tk=0)
    with pytest.raises(FPGAError, match=r"'Tm' must be an integer; accepted 1 to 65,536 MACs \(got 4.0\)"):
        HotNASDesign(4.0, 4, 8, 8, 0, 1, 1, 1)
    with pytest.raises(FPGAError, match="'Tm' must be an integer, not bool"):
        Zhang15Design(True, 4, 8, 8)
    d = HotNASDesign(np.int64(4), 4, 8, 8, 0, 1, 1, 1)
    assert type(d.Tm) is int and HotNASDesign.from_dict(d.to_dict()) == d


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="TmnrcdkIpOW=,0123456789-+ .x_", max_size=60))
def test_design_strings_are_a_design_or_one_fpga_error(text):
    try:
        d = HotNASDesign.parse(text)
    except FPGAError as e:
        assert "\n" not in str(e)
    else:
        assert 1 <= d.Tm <= B.MAX_UNROLL and 1 <= d.Ip <= B.MAX_PORT_WORDS


# ---- property: any mutation of a description is an Accelerator or one AcceleratorError ------
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10, 10 ** 20), st.floats(),
                    st.text(max_size=5), st.lists(st.sampled_from(["K", "C", "W", "X"]), max_size=3),
                    st.dictionaries(st.sampled_from(["W", "I", "O", "Z"]), st.integers(-2, 100), max_size=3))
_PATHS = [["name"], ["clock_mhz"], ["word_bits"], ["array", 0, "size"], ["array", 0, "loops"], ["array", 0, "fused"],
          ["array_timing"], ["stores_padding"], ["rf", "capacity_bytes"], ["rf", "bw_words_per_cycle"],
          ["rf", "bypass"], ["glb", "buffering"], ["glb", "read_energy_pj"], ["dram", "bw_bits_per_cycle"],
          ["dram", "capacity_bytes"], ["mac_energy_pj"], ["energy_table"], ["notes"]]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(range(len(_PATHS))), _VALUES), min_size=1, max_size=3))
def test_any_mutation_is_an_accelerator_or_one_error(changes):
    d = copy.deepcopy(BASE)
    d["glb"]["read_energy_pj"] = d["glb"]["write_energy_pj"] = 6.0
    for i, v in changes:
        _set(_PATHS[i], v)(d)
    try:
        acc = accelerator_from_dict(d, "p.yaml")
    except AcceleratorError as e:
        assert str(e).startswith("p.yaml") and "\n" not in str(e)
        return
    nums = [acc.clock_mhz, acc.mac_energy_pj, acc.noc_energy_pj, acc.rf.read_energy_pj, acc.glb.write_energy_pj,
            acc.dram.read_energy_pj, acc.dram.bw_words_per_cycle]
    assert all(math.isfinite(x) for x in nums) and acc.num_pes <= S.MAX_PES
    assert accelerator_from_dict(json.loads(json.dumps(acc.to_dict()))) == acc
