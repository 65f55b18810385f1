"""Hand-counted storage rules: bypass, word widths with bandwidth in bits, double/single
buffering, and zero padding generated on chip. Every number is derived in the comments, from
the weight-stationary 2x2 case of ``test_cost_handcount.py`` (whose counts are the baseline)."""
from dataclasses import replace

import pytest

from accelerators import accelerator_from_dict
from accelerators.cost import compulsory_words, evaluate_mapping, lower_bound
from accelerators.kernel import COL, evaluate_batch
from models import Layer
from models.errors import AcceleratorError

from test_cost_handcount import LAYER, both, mapping, toy_acc

# The baseline: RF loops S, R; GLB loops Q, P; K x C = 2 x 2 on the array. Each PE keeps one
# 3x3 filter (W fills 1), takes a 3x3 input window per output pixel (I fills 4; Q slides it,
# 6 new words per fill on average) and one partial sum per pixel (O fills 4). Energy 17372 pJ:
# MAC 144, RF 724 (W 180, I 240, O 304), NoC 296 (W 36, I 96, O 16 words at 2 pJ), GLB 1008
# (W 72, I 80, O 16 words at 6 pJ), DRAM 15200 (W 36, I 32, O 8 words at 200 pJ). Cycles 17
# (start-up: 68 words / 4) + 36 + 2 (tail 8 / 4).
WS = mapping({"R": 3, "S": 3}, {"P": 2, "Q": 2}, {}, [{"K": 2}, {"C": 2}], ["SR", "QP", ""])


def _acc(**levels):
    base = toy_acc(["K"], ["C"]).to_dict()
    for name, extra in levels.items():
        base[name] = {**base[name], **extra} if isinstance(extra, dict) else extra
    return accelerator_from_dict(base)


def _agree(c, row):
    assert row[COL["reason"]] == 0
    for k in ("cycles", "energy_pj", "startup_cycles", "tail_cycles"):
        assert row[COL[k]] == getattr(c, k), k


def test_baseline_counts():
    c, row = both(LAYER, toy_acc(["K"], ["C"]), *WS)
    assert (c.energy_pj, c.cycles) == (17372, 55)
    _agree(c, row)


def test_weights_bypass_the_global_buffer():
    # W goes DRAM -> PEs directly: the 36 weights are read from DRAM once each (the array's
    # footprint, one fill) and the GLB sees no W access: 17372 - (36 + 36) x 6 = 16940 pJ.
    # The start-up now loads that footprint (36) plus the GLB's input tile (32): 17 cycles.
    c, row = both(LAYER, _acc(glb={"bypass": ["W"]}), *WS)
    assert c.accesses["glb"]["W"] == {"reads": 0, "writes": 0}
    assert c.accesses["dram"]["W"] == {"reads": 36, "writes": 0}
    assert c.energy_pj == 16940 and (c.startup_cycles, c.cycles) == (17, 55)
    _agree(c, row)


def test_inputs_bypass_the_register_file():
    # I is not stored in the PE: each MAC's input comes over the network. The one-element operand
    # changes with every R and S step (both index the input), so it is refilled 3 x 3 times per
    # pixel x 4 pixels = 36 times per PE: 36 x 4 PEs = 144 NoC words (the RF no longer keeps the
    # slid-over window: 96 before), and the GLB sends the array's 2-channel footprint each time:
    # 36 x 2 = 72 reads (48 before). The RF's 240 pJ of input accesses go, the NoC gains 96 pJ
    # and the GLB 144 pJ: 17372 - 240 + 96 + 144 = 17372 pJ.
    c, row = both(LAYER, _acc(rf={"bypass": ["I"]}), *WS)
    assert c.accesses["rf"]["I"] == {"reads": 0, "writes": 0}
    assert c.accesses["glb"]["I"] == {"reads": 72, "writes": 32}
    assert c.energy_by_component["noc"] == 296 + 96 and c.energy_by_component["rf"] == 724 - 240
    assert c.energy_pj == 17372
    _agree(c, row)
    # a register file that bypasses I has room for a bigger filter tile: only W (18 B) and the
    # double-buffered partial sum (2 x 2 B) need space: 22 B fit, 21 B do not
    assert evaluate_mapping(LAYER, _acc(rf={"bypass": ["I"], "capacity_bytes": 22}), *WS).valid
    assert not evaluate_mapping(LAYER, _acc(rf={"bypass": ["I"], "capacity_bytes": 21}), *WS).valid


def test_word_widths_with_bandwidth_in_bits():
    # 8-bit weights and inputs, 32-bit partial sums; DRAM moves 64 bits per cycle (four 16-bit
    # words, as before). Start-up: (36 + 32) x 8 = 544 bits / 64 = 8.5 -> 9 cycles; tail: the 8
    # final outputs leave at the activation width, 8 x 8 = 64 bits -> 1 cycle; no other DRAM
    # traffic; compute 36 (the GLB's 168 words at 16 words/cycle take 11). Cycles 9 + 36 + 1 = 46.
    # Energy: per-access energies scale with width / 16 (W, I x 0.5; O x 2); MAC given as 1 pJ.
    # RF: W 180 x .5 = 90, I 240 x .5 = 120, O 304 x 2 = 608 -> 818; NoC: W 36 x 2 x .5 = 36,
    # I 96 x 2 x .5 = 96, O 16 x 2 x 2 = 64 -> 196; GLB: W 72 x 6 x .5 = 216, I 80 x 6 x .5 =
    # 240, O 16 x 6 x 2 = 192 -> 648; DRAM: 36 x 100 + 32 x 100 + 8 final outputs x 100 = 7600.
    # Total 144 + 818 + 196 + 648 + 7600 = 9406 pJ.
    d = toy_acc(["K"], ["C"]).to_dict()
    d["word_bits"] = {"W": 8, "I": 8, "O": 32}
    d["dram"] = {"bw_bits_per_cycle": 64, "read_energy_pj": 200, "write_energy_pj": 200}
    acc = accelerator_from_dict(d)
    c, row = both(LAYER, acc, *WS)
    assert (c.startup_cycles, c.tail_cycles, c.cycles) == (9, 1, 46)
    assert c.energy_by_component == {"mac": 144, "rf": 818, "noc": 196, "glb": 648, "dram": 7600}
    assert c.energy_pj == 9406
    _agree(c, row)
    # the same bandwidth in bytes per cycle is the same level; words/cycle are shown as 16-bit words
    d["dram"] = {"bw_bytes_per_cycle": 8, "read_energy_pj": 200, "write_energy_pj": 200}
    same = accelerator_from_dict(d)
    assert same.dram.bw_bits_per_cycle == 64 and same.dram.bw_words_per_cycle == 4
    assert evaluate_mapping(LAYER, same, *WS).cycles == 46
    # lower bound: 36 + 32 + 8 words of 8 bits = 608 bits / 64 -> 10 cycles, below 144 MACs / 4
    assert lower_bound(LAYER, acc).cycles == 36


def test_spilled_partial_sums_move_at_their_width():
    # DRAM loops P (inner) and C (outer): the GLB holds the outputs of one P step (K2 x Q2 = 4),
    # so every output is visited twice: the first visit spills 8 partial sums (32 bits) that the
    # second reads back; the second writes the 8 final outputs (8 bits). DRAM output traffic:
    # 8 x 32 + 8 x 32 + 8 x 8 = 576 bits, where 24 words at one width would be 768.
    d = toy_acc(["K"], ["C"], glb_bytes=4096).to_dict()
    d["array"] = [{"size": 2, "loops": ["K"]}]
    d["word_bits"] = {"W": 8, "I": 8, "O": 32}
    d["dram"] = {"bw_bits_per_cycle": 8, "read_energy_pj": 200, "write_energy_pj": 200}
    acc = accelerator_from_dict(d)
    T, S, O = mapping({"R": 3, "S": 3}, {"Q": 2}, {"P": 2, "C": 2}, [{"K": 2}], ["SR", "Q", "PC"])
    c, row = both(LAYER, acc, T, S, O)
    assert c.accesses["dram"]["O"] == {"reads": 8, "writes": 16}
    # DRAM energy of outputs: 8 reads x 400 + 8 spilled writes x 400 + 8 final writes x 100
    w, i = c.accesses["dram"]["W"]["reads"], c.accesses["dram"]["I"]["reads"]
    assert c.energy_by_component["dram"] == (w + i) * 100 + 8 * 400 + 8 * 400 + 8 * 100
    # the tail is the last tile of final outputs (4 x 8 bits / 8 bits per cycle = 4 cycles)
    assert c.tail_cycles == 4
    _agree(c, row)


def test_double_buffering_doubles_refilled_tiles_only():
    # RF tiles (16-bit words): W 9 words, loaded once (1 copy, 18 B); I a 9-word window refilled
    # per pixel (2 copies, 36 B); O one partial sum refilled per pixel (2 copies, 4 B): 58 B.
    assert evaluate_mapping(LAYER, toy_acc(["K"], ["C"], rf_bytes=58), *WS).valid
    c = evaluate_mapping(LAYER, toy_acc(["K"], ["C"], rf_bytes=57), *WS)
    assert c.reason == "tiles overflow the register file"
    # single-buffered: one copy each, 18 + 18 + 2 = 38 B
    assert evaluate_mapping(LAYER, _acc(rf={"capacity_bytes": 38, "buffering": "single"}), *WS).valid
    assert not evaluate_mapping(LAYER, _acc(rf={"capacity_bytes": 37, "buffering": "single"}), *WS).valid


def test_single_buffering_serializes_transfers_with_compute():
    # A single-buffered RF cannot load the next window while the array works: the GLB's 11
    # cycles of traffic (168 words / 16) add to the 36 of compute. A single-buffered GLB adds the
    # DRAM traffic beyond start-up and tail, which is none here. Cycles 17 + (36 + 11) + 2 = 66.
    acc = _acc(rf={"buffering": "single"}, glb={"buffering": "single"})
    c, row = both(LAYER, acc, *WS)
    assert (c.cycles, c.bound) == (66, "compute")
    _agree(c, row)


def test_a_global_buffer_without_bandwidth_is_never_the_roof():
    # As the RF: no bandwidth field on the GLB means its 168 words never bound the layer. A
    # single-buffered RF under it adds nothing: 17 + 36 + 2 = 55 cycles, as the baseline.
    base = toy_acc(["K"], ["C"]).to_dict()
    base["glb"] = {k: v for k, v in base["glb"].items() if not k.startswith("bw_")}
    base["rf"] = {**base["rf"], "buffering": "single"}
    c, row = both(LAYER, accelerator_from_dict(base), *WS)
    assert (c.cycles, c.energy_pj) == (55, 17372)
    _agree(c, row)


# 3x3 conv on a 4x4 single-channel input with 'same' padding: the padded input is 6x6 = 36
# words, the real one 4x4 = 16.
PADDED = Layer.conv("pad", 1, 1, 4, 3)


def test_padding_is_generated_on_chip():
    # One PE; R, S at the RF, Q, P at the GLB. Window rows of the four output rows read real
    # rows {1,2}, {1,2,3}, {2,3,4}, {3,4}: 2, 3, 3, 2 (mean 2.5). Q slides the window along a
    # row of outputs, whose 4 windows span the 4 real columns: per output row a_p x 4 real
    # inputs, 10 x 4 = 40 in all, where the stored padding would move 3 rows x 6 columns per
    # output row, 72; DRAM reads the 16 real inputs once (36 with padding stored).
    one = accelerator_from_dict({**toy_acc(["K"], ["C"]).to_dict(),
                                 "array": [{"size": 1, "loops": ["K"]}]})
    T, S, O = mapping({"R": 3, "S": 3}, {"P": 4, "Q": 4}, {}, [{}], ["SR", "QP", ""])
    c, row = both(PADDED, one, T, S, O)
    assert c.accesses["rf"]["I"]["writes"] == 40 and c.accesses["glb"]["I"]["reads"] == 40
    assert c.accesses["dram"]["I"]["reads"] == 16 and compulsory_words(PADDED)["I"] == 16
    _agree(c, row)
    stored, srow = both(PADDED, replace(one, stores_padding=True), T, S, O)
    assert stored.accesses["rf"]["I"]["writes"] == 72 and stored.accesses["dram"]["I"]["reads"] == 36
    assert compulsory_words(PADDED, stores_padding=True)["I"] == 36
    _agree(stored, srow)
    # without padding the two descriptions are the same model
    plain = Layer(name="nopad", P=4, Q=4, R=3, S=3)
    assert evaluate_mapping(plain, one, T, S, O).energy_pj == evaluate_mapping(
        plain, replace(one, stores_padding=True), T, S, O).energy_pj


@pytest.mark.parametrize("level, extra, msg", [
    ("dram", {"bypass": ["W"]}, "cannot be bypassed"),
    ("glb", {"bypass": ["X"]}, "list of data spaces"),
    ("rf", {"bypass": ["W", "I", "O"]}, "holds no data space"),
    ("rf", {"capacity_bytes": {"W": 8, "I": 8}, "bypass": ["I"]}, "both bypassed and given a capacity"),
    ("glb", {"buffering": "triple"}, "buffering"),
    ("dram", {"buffering": "double"}, "on-chip levels only"),
    ("dram", {"bw_bits_per_cycle": 64}, "not several"),
    ("glb", {"ports": 2}, "unknown field"),
])
def test_bad_storage_descriptions_are_one_clear_error(level, extra, msg):
    with pytest.raises(AcceleratorError, match=msg):
        _acc(**{level: extra})


def test_zero_bandwidth_in_bytes_is_one_clear_error():
    d = toy_acc(["K"], ["C"]).to_dict()
    d["glb"] = {"capacity_bytes": 1024, "bw_bytes_per_cycle": 0}
    with pytest.raises(AcceleratorError, match="'bw_bytes_per_cycle' must be > 0"):
        accelerator_from_dict(d)


@pytest.mark.parametrize("field, value, msg", [
    ("word_bits", {"W": 0, "I": 8, "O": 8}, "must be > 0"),
    ("word_bits", 128, "1 to 64 bits"),
    ("stores_padding", "yes", "true or false"),
])
def test_bad_widths_and_padding_flags_are_one_clear_error(field, value, msg):
    with pytest.raises(AcceleratorError, match=msg):
        accelerator_from_dict({**toy_acc(["K"], ["C"]).to_dict(), field: value})


def test_storage_fields_round_trip_through_yaml():
    d = toy_acc(["K"], ["C"]).to_dict()
    d["word_bits"] = {"W": 8, "I": 8, "O": 32}
    d["stores_padding"] = True
    d["rf"] = {**d["rf"], "bypass": ["I"], "buffering": "single"}
    d["glb"] = {**d["glb"], "bypass": ["W"]}
    d["dram"] = {"bw_bits_per_cycle": 64, "read_energy_pj": 200, "write_energy_pj": 200}
    acc = accelerator_from_dict(d)
    again = accelerator_from_dict(acc.to_dict())
    assert again == acc and again.fingerprint() == acc.fingerprint()
    assert again.rf.bypass == ("I",) and again.glb.bypass == ("W",) and again.rf.buffering == "single"


def test_energies_per_data_space():
    # separate physical register files per operand: W accesses 0.5 pJ, O accesses 3 pJ (per
    # 16-bit word); I is not in the RF. Baseline RF accesses: W 144 + 36, O 160 + 144, so the RF
    # costs 180 x 0.5 + 304 x 3 = 1002 pJ (the I accesses are gone: 17660 - 772 + 1002 = 17890).
    acc = _acc(rf={"bypass": ["I"], "read_energy_pj": {"W": 0.5, "O": 3}, "write_energy_pj": {"W": 0.5, "O": 3}})
    c, row = both(LAYER, acc, *WS)
    assert c.energy_by_component["rf"] == 1002 and c.energy_pj == 17890
    _agree(c, row)
    assert accelerator_from_dict(acc.to_dict()) == acc
    with pytest.raises(AcceleratorError, match="give both energies per data space"):
        _acc(rf={"read_energy_pj": {"W": 1}, "write_energy_pj": 1})


def test_sliding_window_moves_only_new_rows():
    # 1-D 3-tap convolution over 4 outputs (6 inputs), one PE, S = 3 taps in the RF, Q = 4
    # at the GLB. Each step of Q slides the 3-input window by one: the 4 windows span 6 inputs,
    # so the RF takes 6 words in all (1.5 per fill on average), not 4 x 3 = 12.
    layer = Layer(name="slide", Q=4, S=3)
    one = accelerator_from_dict({**toy_acc(["K"], ["C"]).to_dict(), "array": [{"size": 1, "loops": ["K"]}]})
    T, S, O = mapping({"S": 3}, {"Q": 4}, {}, [{}], ["S", "Q", ""])
    c, row = both(layer, one, T, S, O)
    assert c.accesses["rf"]["I"]["writes"] == 6 and c.accesses["glb"]["I"]["reads"] == 6
    _agree(c, row)
    # at DRAM: Q = 2 x 2 (GLB x DRAM): the GLB holds 2 windows (4 inputs); the DRAM loop slides
    # that tile by 2: 2 tiles span 6 inputs -> 6 DRAM reads, not 2 x 4 = 8
    T, S, O = mapping({"S": 3}, {"Q": 2}, {"Q": 2}, [{}], ["S", "Q", "Q"])
    c, row = both(layer, one, T, S, O)
    assert c.accesses["dram"]["I"]["reads"] == 6 and c.accesses["glb"]["I"]["writes"] == 6
    assert c.startup_cycles == 2  # the first tile is whole: ceil((4 inputs + 3 weights) / 4 per cycle)
    _agree(c, row)
    # unrolled on a 4-PE array, Q is not stepped in time: each PE takes its own window
    quad = accelerator_from_dict({**toy_acc(["K"], ["C"]).to_dict(), "array": [{"size": 4, "loops": ["Q"]}]})
    T, S, O = mapping({"S": 3}, {}, {}, [{"Q": 4}], ["S", "", ""])
    c, row = both(layer, quad, T, S, O)
    assert c.accesses["rf"]["I"]["writes"] == 12 and c.accesses["glb"]["I"]["reads"] == 6
    _agree(c, row)


@pytest.mark.parametrize("level, extra", [("dram", {"bypass": ["W"]}), ("rf", {"bypass": ["W", "I", "O"]}),
                                          ("glb", {"buffering": "triple"})])
def test_bad_storage_yaml_is_one_error_line_from_the_cli(tmp_path, capsys, level, extra):
    import yaml

    from codesign.cli import main

    d = toy_acc(["K"], ["C"]).to_dict()
    d[level] = {**d[level], **extra}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(d))
    assert main(["accelerators", "show", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("codesign: error:") and f"{level}" in err[0]


def test_whole_accesses_at_the_global_buffer():
    # GLB accesses 64 bits wide (four 16-bit words). W and I move in multiples of four words
    # (W: one 36-word fill and one 36-word read; I: one 32-word fill, four reads of 12 words), so
    # they cost what they did. O: each of the 4 drains from the array is 2 words (the K = 2 PEs'
    # outputs of one pixel) but pays a whole access of 4, so 16 words of energy for 8 moved;
    # the 8 outputs sent to DRAM in one transfer take 2 accesses, 8 words. GLB O energy
    # (16 + 8) x 6 = 144 pJ instead of 96: 17372 + 48 = 17420 pJ. Latency is unchanged.
    c, row = both(LAYER, _acc(glb={"access_bits": 64}), *WS)
    assert c.energy_by_component["glb"] == 1008 + 48 and c.energy_pj == 17420 and c.cycles == 55
    assert c.accesses["glb"]["O"] == {"reads": 8, "writes": 8}  # words moved, not accesses
    _agree(c, row)
    # per data space: only the output memory's accesses are wide, the same 48 pJ
    assert evaluate_mapping(LAYER, _acc(glb={"access_bits": {"O": 64}}), *WS).energy_pj == 17420


def test_whole_accesses_at_dram():
    # DRAM bursts of 256 bits (16 words): W 36 words = 576 bits -> 3 bursts (768 bits, 48 words:
    # +12 x 200 = 2400 pJ); I 32 words = 2 bursts exactly; O 8 final words = 128 bits -> 1 burst
    # (16 words: +8 x 200 = 1600 pJ). 17372 + 4000 = 21372 pJ.
    c, row = both(LAYER, _acc(dram={"access_bits": 256}), *WS)
    assert c.energy_by_component["dram"] == 15200 + 4000 and c.energy_pj == 21372
    _agree(c, row)


def _narrow_acc(narrow, glb_bits):
    d = toy_acc(["K"], ["C"]).to_dict()
    d["word_bits"] = {"W": 8, "I": 8, "O": 32}
    d["dram"] = {"bw_bits_per_cycle": 64, "read_energy_pj": 200, "write_energy_pj": 200}
    d["glb"] = {"capacity_bytes": 1024, "bw_bits_per_cycle": glb_bits, "read_energy_pj": 6, "write_energy_pj": 6}
    return accelerator_from_dict({**d, "narrow_outputs_at": narrow})


def test_finished_outputs_narrowed_at_the_global_buffer():
    # The widths case of test_word_widths_with_bandwidth_in_bits (W, I 8 bits, O 32): all 16
    # GLB output accesses (8 drains in, 8 reads out to DRAM) carry finished outputs (no
    # reduction loop above the RF). Stored at the activation width from the GLB on, they cost
    # 16 x 6 x 8/16 = 48 pJ instead of 16 x 6 x 32/16 = 192: GLB 648 - 144 = 504, total 9262.
    # With a 16-bit/cycle GLB the GLB is the roof: W 72 x 8 + I 80 x 8 + O 16 x 32 = 1728 bits
    # = 108 cycles; narrowed, O is 16 x 8: 1344 bits = 84 cycles. Cycles 9 + 108 + 1 = 118 and
    # 9 + 84 + 1 = 94 (start-up 9, tail 1 as in the widths test).
    late, early = (both(LAYER, _narrow_acc(n, 16), *WS) for n in ("dram", "glb"))
    assert late[0].energy_by_component["glb"] == 648 and early[0].energy_by_component["glb"] == 504
    assert (late[0].energy_pj, early[0].energy_pj) == (9406, 9262)
    assert (late[0].cycles, early[0].cycles) == (118, 94) and early[0].bound == "glb"
    for c, row in (late, early):
        _agree(c, row)
    # the lower bound counts each output once in and once out of the GLB at the narrow width
    assert lower_bound(LAYER, _narrow_acc("glb", 16)).energy_pj == lower_bound(LAYER, _narrow_acc("dram", 16)).energy_pj - 144


def test_only_finished_outputs_are_narrowed():
    # The spill case of test_spilled_partial_sums_move_at_their_width with a 1 kB GLB: DRAM loops
    # P (inner), C (outer), GLB loop Q, K = 2 on the array. Each PE's output tile is drained
    # f0 = Q2 x P2 x C2 = 8 times, 4 of them final: the GLB takes in 4 x 2 = 8 partial and 8
    # final words from the array and 8 partial words back from DRAM (24 writes); it sends 8
    # partial words back into the array, 8 partial words out to DRAM and 8 final words out (24
    # reads). At 6 pJ per 16 bits (0.375 pJ/bit), all at 32 bits: 48 x 32 x 0.375 = 576 pJ;
    # narrowed: 32 partial words x 32 bits + 16 final words x 8 bits = 1152 bits -> 432 pJ.
    T, S, O = mapping({"R": 3, "S": 3}, {"Q": 2}, {"P": 2, "C": 2}, [{"K": 2}], ["SR", "Q", "PC"])
    out = {}
    for n in ("dram", "glb"):
        d = _narrow_acc(n, 64).to_dict()
        d["array"] = [{"size": 2, "loops": ["K"]}]
        c, row = both(LAYER, accelerator_from_dict(d), T, S, O)
        assert c.accesses["glb"]["O"] == {"reads": 24, "writes": 24}
        _agree(c, row)
        out[n] = c
    assert out["dram"].energy_by_component["glb"] - out["glb"].energy_by_component["glb"] == 576 - 432
    assert out["dram"].energy_by_component["dram"] == out["glb"].energy_by_component["dram"]


@pytest.mark.parametrize("extra, msg", [
    ({"rf": {"access_bits": 64}}, "register file is accessed one word per MAC"),
    ({"glb": {"access_bits": 0}}, "access_bits"),
    ({"glb": {"access_bits": {"X": 64}}}, "data space"),
    ({"glb": {"bypass": ["W"], "access_bits": {"W": 64}}}, "both bypassed and given access_bits"),
    ({"glb": {"bypass": ["O"]}, "narrow_outputs_at": "glb"}, "bypasses O"),
    ({"narrow_outputs_at": "rf"}, "narrow_outputs_at 'rf' must be one of dram, glb"),
])
def test_bad_access_widths_are_one_clear_error(extra, msg):
    d = toy_acc(["K"], ["C"]).to_dict()
    for k, v in extra.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) else v
    with pytest.raises(AcceleratorError, match=msg):
        accelerator_from_dict(d)


def test_access_widths_round_trip_through_yaml():
    d = toy_acc(["K"], ["C"]).to_dict()
    d["glb"] = {**d["glb"], "access_bits": {"W": 64, "O": 128}}
    d["dram"] = {**d["dram"], "access_bits": 512}
    d["narrow_outputs_at"] = "glb"
    acc = accelerator_from_dict(d)
    again = accelerator_from_dict(acc.to_dict())
    assert again == acc and again.fingerprint() == acc.fingerprint()
    assert again.fingerprint() != toy_acc(["K"], ["C"]).fingerprint()
    assert again.glb.access_bits_of("O") == 128 and again.glb.access_bits_of("I") is None
