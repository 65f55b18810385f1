"""Hand-counted accesses for small layers: every number below is derived in the comments."""
import numpy as np
import pytest

from accelerators import accelerator_from_dict
from accelerators.cost import compulsory_words, evaluate_mapping, lower_bound
from accelerators.kernel import COL, evaluate_batch
from models import DIMS, Layer

IDX = {d: i for i, d in enumerate(DIMS)}


def toy_acc(loops0, loops1, rf_bytes=128, glb_bytes=1024):
    """A 2x2 array with the plain Eyeriss-normalized energies (MAC 1, RF 1, NoC 2, GLB 6, DRAM 200)."""
    return accelerator_from_dict({
        "name": "toy", "clock_mhz": 100, "word_bits": 16,
        "array": [{"size": 2, "loops": loops0}, {"size": 2, "loops": loops1}],
        "rf": {"capacity_bytes": rf_bytes, "bw_words_per_cycle": None, "read_energy_pj": 1, "write_energy_pj": 1},
        "glb": {"capacity_bytes": glb_bytes, "bw_words_per_cycle": 16, "read_energy_pj": 6, "write_energy_pj": 6},
        "dram": {"bw_words_per_cycle": 4, "read_energy_pj": 200, "write_energy_pj": 200},
        "mac_energy_pj": 1, "noc_energy_pj": 2,
    })


def mapping(rf, glb, dram, spatial, orders):
    """Build arrays from {dim: factor} dicts; orders are strings innermost first per level."""
    T = np.ones((3, 8), np.int64)
    for l, fac in enumerate((rf, glb, dram)):
        for d, f in fac.items():
            T[l, IDX[d]] = f
    S = np.ones((3, 8), np.int64)
    for a, fac in enumerate(spatial):
        for d, f in fac.items():
            S[a, IDX[d]] = f
    O = np.array([[IDX[d] for d in o] + [i for i in range(8) if DIMS[i] not in o] for o in orders])
    return T, S, O


# 3x3 conv, K=C=2, 2x2 outputs, stride 1: inputs are 4x4 per channel.
LAYER = Layer(name="toy3x3", K=2, C=2, P=2, Q=2, R=3, S=3)
# MACs = 2*2*2*2*3*3 = 144; |W| = 2*2*9 = 36; |I| = 2*4*4 = 32; |O| = 2*2*2 = 8.


def both(layer, acc, T, S, O):
    c = evaluate_mapping(layer, acc, T, S, O)
    row = evaluate_batch(layer, acc, T[None], S[None], O[None])[0]
    return c, row


def test_layer_sizes():
    assert (LAYER.macs, LAYER.weight_elems, LAYER.input_elems, LAYER.output_elems) == (144, 36, 32, 8)


def test_weight_stationary_2x2():
    # Array: dim0 takes K (2 filters), dim1 takes C (2 channels): each PE keeps the 3x3 filter of
    # one (k, c) pair. RF loops S, R (innermost); GLB loops Q then P; nothing at DRAM.
    acc = toy_acc(["K"], ["C"])
    T, S, O = mapping({"R": 3, "S": 3}, {"P": 2, "Q": 2}, {}, [{"K": 2}, {"C": 2}],
                      ["SR", "QP", ""])
    c, row = both(LAYER, acc, T, S, O)
    assert c.valid
    a = c.accesses
    # Tiles per PE: W 9 (r,s); I 3x3 = 9 (one output pixel's window); O 1.
    # Array footprint: W 2*2*9 = 36; I 2 channels * 3x3 = 18 (multicast over K); O 2 (reduced over C).
    # Weights: the P, Q loops above the RF are irrelevant -> loaded once: 36 RF writes, 36 GLB
    # reads, 36 GLB fills from 36 DRAM reads; every MAC reads one weight: 144 RF reads.
    assert a["rf"]["W"] == {"reads": 144, "writes": 36}
    assert a["glb"]["W"] == {"reads": 36, "writes": 36}
    assert a["dram"]["W"] == {"reads": 36, "writes": 0}
    # Inputs: a new 3x3 window per output pixel (4 fills). Q, the innermost loop above the RF,
    # slides the window: the two windows of a row of outputs span 3 x 4 = 12 inputs, so a fill
    # brings 12 / 2 = 6 new words on average (the first 9, the second 3). Each of 4 PEs writes
    # 4 x 6 = 24 (96 RF writes); the GLB sends the footprint over 2 channels, 2 x 6 per fill (48
    # reads, where whole windows would be 72); the GLB holds all 32 inputs.
    assert a["rf"]["I"] == {"reads": 144, "writes": 96}
    assert a["glb"]["I"] == {"reads": 48, "writes": 32}
    assert a["dram"]["I"] == {"reads": 32, "writes": 0}
    # Outputs: 4 pixel visits, each a new output (no partial-sum refill): per visit 4 PEs drain 1
    # word (16 RF reads beyond the 144 MAC reads), the reduced footprint of 2 goes to the GLB (8
    # writes), which drains its 8 outputs to DRAM once (8 GLB reads, 8 DRAM writes).
    assert a["rf"]["O"] == {"reads": 160, "writes": 144}
    assert a["glb"]["O"] == {"reads": 8, "writes": 8}
    assert a["dram"]["O"] == {"reads": 0, "writes": 8}
    # NoC words: 36 (W) + 96 (I) + 16 (O drains) = 148.
    # Energy: MAC 144; RF (180+240+304)*1 = 724; NoC 148*2 = 296; GLB (72+80+16)*6 = 1008;
    # DRAM (36+32+8)*200 = 15200. Total 17372.
    assert c.energy_by_component == {"mac": 144, "rf": 724, "noc": 296, "glb": 1008, "dram": 15200}
    assert c.energy_pj == 17372
    # Cycles: nothing at DRAM, so the GLB tiles are the whole layer: start-up loads W 36 + I 32 =
    # 68 words at 4/cycle = 17 cycles, the tail writes O 8 words = 2 cycles. In between: temporal
    # product 3*3*2*2 = 36 = 144 MACs / 4 PEs; GLB 168/16 -> 11; DRAM 76 - 68 - 8 = 0 words left.
    # 17 + 36 + 2 = 55. Busiest resource: compute 36 > DRAM 17 + 0 + 2 = 19.
    assert (c.cycles, c.compute_cycles, c.startup_cycles, c.tail_cycles, c.pipeline_cycles) == (55, 36, 17, 2, 0)
    assert (c.bound, c.utilization) == ("compute", 144 / (55 * 4))
    assert c.edp == 17372 * 55
    assert row[COL["reason"]] == 0 and row[COL["cycles"]] == 55 and row[COL["energy_pj"]] == 17372
    assert (row[COL["startup_cycles"]], row[COL["tail_cycles"]], row[COL["pipeline_cycles"]]) == (17, 2, 0)
    assert row[COL["dram_words"]] == 76 and row[COL["glb_words"]] == 168


def test_output_stationary_2x2():
    # Array: dim0 takes P, dim1 takes Q: each PE owns one output pixel. RF loops S, R, C
    # (the whole reduction stays in the PE); GLB loop K; nothing at DRAM.
    acc = toy_acc(["P"], ["Q"])
    T, S, O = mapping({"R": 3, "S": 3, "C": 2}, {"K": 2}, {}, [{"P": 2}, {"Q": 2}],
                      ["SRC", "K", ""])
    c, row = both(LAYER, acc, T, S, O)
    assert c.valid
    a = c.accesses
    # Tiles per PE: W 2*9 = 18; I 2*3*3 = 18; O 1. Footprint: W 18 (multicast to all 4 PEs);
    # I 2 * 4x4 = 32 (neighbouring windows share their halo); O 4.
    # Weights change with K (2 fills): RF writes 2*18*4 = 144, GLB reads 2*18 = 36.
    assert a["rf"]["W"] == {"reads": 144, "writes": 144}
    assert a["glb"]["W"] == {"reads": 36, "writes": 36}
    # Inputs are irrelevant to K: loaded once: RF writes 18*4 = 72, GLB reads 32.
    assert a["rf"]["I"] == {"reads": 144, "writes": 72}
    assert a["glb"]["I"] == {"reads": 32, "writes": 32}
    # Outputs: 2 visits (K), both new: drains 2*1*4 = 8; GLB writes 2*4 = 8; DRAM writes 8.
    assert a["rf"]["O"] == {"reads": 152, "writes": 144}
    assert a["glb"]["O"] == {"reads": 8, "writes": 8}
    assert a["dram"]["O"] == {"reads": 0, "writes": 8}
    # Energy: MAC 144; RF 288+216+296 = 800; NoC (144+72+8)*2 = 448; GLB (72+64+16)*6 = 912;
    # DRAM 76*200 = 15200. Total 17504.
    assert c.energy_pj == 17504
    # Cycles: start-up (36 + 32) / 4 = 17, 36 temporal iterations, tail 8 / 4 = 2: 55.
    assert c.cycles == 55
    assert row[COL["energy_pj"]] == 17504 and row[COL["cycles"]] == 55


def test_partial_sums_go_back_to_dram_when_reduction_is_outside():
    # 1x1 conv K=2, C=2 on a single PE (array of size 1) with room for one word of each space,
    # double-buffered (each is refilled: two copies of 2 bytes each).
    # DRAM loops: K inner, C outer. Each output is visited twice (once per c): 4 writes to DRAM,
    # and the second visit of each output reads its partial sum back: 2 DRAM reads.
    layer = Layer(name="pw", K=2, C=2)
    acc = accelerator_from_dict({
        "name": "one", "array": [{"size": 1, "loops": ["K"]}],
        "rf": {"capacity_bytes": 12, "read_energy_pj": 1, "write_energy_pj": 1},
        "glb": {"capacity_bytes": 12, "bw_words_per_cycle": 1, "read_energy_pj": 6, "write_energy_pj": 6},
        "dram": {"bw_words_per_cycle": 1, "read_energy_pj": 200, "write_energy_pj": 200},
        "mac_energy_pj": 1, "noc_energy_pj": 2,
    })
    T, S, O = mapping({}, {}, {"K": 2, "C": 2}, [{}], ["", "", "KC"])
    c, _ = both(layer, acc, T, S, O)
    assert c.accesses["dram"]["O"] == {"reads": 2, "writes": 4}
    # Swapping the order (C inner) keeps each output in place while C runs: no partial-sum traffic.
    T, S, O = mapping({}, {}, {"K": 2, "C": 2}, [{}], ["", "", "CK"])
    c2, _ = both(layer, acc, T, S, O)
    assert c2.accesses["dram"]["O"] == {"reads": 0, "writes": 2}
    # ... but then the weights and inputs: W changes every step (4 reads), I is re-read per k
    # only when C is inside -> C inner: I read 2 (c) * 2 (k) = 4; K inner (first order): I stays
    # through K -> 2 reads.
    assert c2.accesses["dram"]["I"]["reads"] == 4
    assert c.accesses["dram"]["I"]["reads"] == 2


def test_padding_costs_cycles_not_energy():
    # K=3 mapped with a spatial factor of 2 and a temporal factor of 2 covers 4: one padded
    # iteration in four. Start-up loads W 3 + I 1 words (1 cycle at 4/cycle), the tail writes
    # O 3 words (1 cycle): 1 + 2 + 1 = 4 cycles on the 4-PE array.
    layer = Layer(name="pad", K=3)
    acc = toy_acc(["K"], ["C"])
    T, S, O = mapping({"K": 2}, {}, {}, [{"K": 2}, {}], ["K", "", ""])
    c, row = both(layer, acc, T, S, O)
    assert c.valid and c.compute_cycles == 2 and c.cycles == 4
    assert c.utilization == pytest.approx(3 / (4 * 4))
    assert c.energy_by_component["mac"] == 3  # only the 3 real MACs
    assert row[COL["utilization"]] == c.utilization


@pytest.mark.parametrize("case, reason", [
    ("rf_overflow", "register file"),
    ("spatial_not_allowed", "cannot parallelize"),
    ("spatial_too_big", "exceed"),
    ("no_cover", "cover"),
    ("bad_order", "permutation"),
])
def test_invalid_mappings_are_flagged_not_clamped(case, reason):
    acc = toy_acc(["P"], ["Q"], rf_bytes=64)
    args = dict(rf={"R": 3, "S": 3, "C": 2}, glb={"K": 2}, dram={}, spatial=[{"P": 2}, {"Q": 2}],
                orders=["SRC", "K", ""])
    if case == "spatial_not_allowed":
        args.update(rf={"R": 3, "S": 3}, glb={"C": 2, "K": 2})
        args["spatial"] = [{"P": 2}, {"C": 2}]
        args["glb"] = {"K": 2, "Q": 2}
    elif case == "spatial_too_big":
        args["spatial"] = [{"P": 2, "K": 1}, {"Q": 4}]
    elif case == "no_cover":
        args["glb"] = {}
    T, S, O = mapping(**{k: v for k, v in args.items()})
    if case == "bad_order":
        O[1] = [0, 0, 1, 2, 3, 4, 5, 6]
        acc = toy_acc(["P"], ["Q"], rf_bytes=128)
    c, row = both(LAYER, acc, T, S, O)
    assert not c.valid and reason in c.reason
    assert row[COL["reason"]] != 0 and row[COL["cycles"]] == 0


def test_lower_bound_hand_counted():
    acc = toy_acc(["K"], ["C"])
    lb = lower_bound(LAYER, acc)
    # cycles >= ceil(144 / 4) = 36; DRAM words >= 36 + 32 + 8 = 76 -> 19 cycles at 4 words/cycle.
    assert lb.cycles == 36 and lb.dram_words == 76
    # energy >= MACs (144) + 4 RF accesses per MAC (576) + each compulsory word through DRAM
    # once (76*200) and the GLB once in and once out (76*12).
    assert lb.energy_pj == 144 + 576 + 76 * 200 + 76 * 12
    # the weight-stationary mapping above reaches the cycle bound exactly.


def test_systolic_fold_costs():
    # The two 2x2 cases above on a systolic array: every fold (register-file load of the
    # stationary operand) pays the preload (2 rows) and the skew fill + drain (1 + 1): 4 cycles.
    def systolic(acc, st):
        return accelerator_from_dict({**acc.to_dict(), "array_timing": {"kind": "systolic", "stationary": st}})

    # Weight-stationary: the GLB loops (Q, P) are irrelevant to W: one fold. 17 + 36 + 4 + 2 = 59.
    acc = systolic(toy_acc(["K"], ["C"]), "W")
    T, S, O = mapping({"R": 3, "S": 3}, {"P": 2, "Q": 2}, {}, [{"K": 2}, {"C": 2}], ["SR", "QP", ""])
    c, row = both(LAYER, acc, T, S, O)
    assert (c.pipeline_cycles, c.cycles) == (4, 59) and row[COL["cycles"]] == 59
    # Output-stationary: the GLB loop K (2) is relevant to O: two folds, 8 cycles: 17 + 36 + 8 + 2.
    acc = systolic(toy_acc(["P"], ["Q"]), "O")
    T, S, O = mapping({"R": 3, "S": 3, "C": 2}, {"K": 2}, {}, [{"P": 2}, {"Q": 2}], ["SRC", "K", ""])
    c, row = both(LAYER, acc, T, S, O)
    assert (c.pipeline_cycles, c.cycles) == (8, 63) and row[COL["pipeline_cycles"]] == 8
    # The same mapping with inputs stationary: K is irrelevant to I, one fold.
    c, _ = both(LAYER, systolic(toy_acc(["P"], ["Q"]), "I"), T, S, O)
    assert c.pipeline_cycles == 4
    # A broadcast (multicast) array pays its stated setup per fold: 2 folds x 3 cycles.
    mc = accelerator_from_dict({**toy_acc(["P"], ["Q"]).to_dict(),
                                "array_timing": {"kind": "multicast", "stationary": "O", "setup_cycles": 3}})
    c, _ = both(LAYER, mc, T, S, O)
    assert (c.pipeline_cycles, c.cycles) == (6, 61)


@pytest.mark.parametrize("timing, msg", [
    ({"kind": "wavefront"}, "kind 'wavefront' is not one of"),
    ({"kind": "systolic"}, "needs 'stationary'"),
    ({"kind": "systolic", "stationary": "X"}, "stationary 'X' must be one of"),
    ({"kind": "multicast", "stationary": "W", "preload_cycles": 3}, "preload_cycles applies to a systolic"),
    ({"kind": "systolic", "stationary": "W", "setup_cycles": -1}, "'setup_cycles' must be >= 0"),
    ([1, 2], "expected a mapping"),
])
def test_bad_array_timing_is_one_clear_error(timing, msg):
    from models.errors import AcceleratorError
    with pytest.raises(AcceleratorError, match=msg):
        accelerator_from_dict({**toy_acc(["K"], ["C"]).to_dict(), "array_timing": timing})


def test_fused_systolic_array_is_scalesim_weight_stationary():
    # SCALE-Sim's weight-stationary fold on R x C = 4 x 4: the rows hold the flattened window
    # R*S*C = 3*3*8 = 72 (ceil(72 / 4) = 18 row folds), the columns K = 5 (2 column folds);
    # each of the 36 folds streams T = P*Q = 16 input rows and pays 2R + C - 2 = 10 cycles.
    # SCALE-Sim: 36 x (16 + 10) = 936 compute cycles.
    layer = Layer(name="ws", K=5, C=8, P=4, Q=4, R=3, S=3)
    acc = accelerator_from_dict({
        "name": "sa4", "clock_mhz": 100, "word_bits": 8,
        "array": [{"size": 4, "loops": ["C", "R", "S"], "fused": True}, {"size": 4, "loops": ["K"], "fused": True}],
        "array_timing": {"kind": "systolic", "stationary": "W"},
        "rf": {"capacity_bytes": 64, "read_energy_pj": 1, "write_energy_pj": 1},
        "glb": {"capacity_bytes": 1 << 16, "bw_words_per_cycle": 64, "read_energy_pj": 6, "write_energy_pj": 6},
        "dram": {"bw_words_per_cycle": 8, "read_energy_pj": 200, "write_energy_pj": 200},
        "mac_energy_pj": 1, "noc_energy_pj": 2,
    })
    T, S, O = mapping({"P": 4, "Q": 4}, {}, {}, [{"C": 8, "R": 3, "S": 3}, {"K": 5}], ["QP", "", ""])
    c, row = both(layer, acc, T, S, O)
    assert c.valid, c.reason
    assert (c.compute_cycles, c.pipeline_cycles) == (36 * 16, 36 * 10)
    # start-up: all weights (5*8*9 = 360) and inputs (8*6*6 = 288) at 8 words/cycle = 81;
    # tail: 5*16 = 80 outputs = 10 cycles; GLB traffic is far below 936 cycles at 64 words/cycle.
    assert (c.startup_cycles, c.tail_cycles, c.cycles) == (81, 10, 81 + 936 + 10)
    assert row[COL["cycles"]] == c.cycles and row[COL["compute_cycles"]] == 576
    # the 360 MACs per pass are spread over 16 PEs: utilization 5760 / (1027 x 16)
    assert c.utilization == pytest.approx(layer.macs / (1027 * 16))
    # P split into 2 at the GLB: W is irrelevant to P, but the 36 passes sit inside that loop and
    # each loads other weights, so every (p1, pass) is a fold: 72 folds, 720 pipeline cycles,
    # and the RF takes the 360 weights twice (720 writes) where one pass over P took them once.
    T2, S2, O2 = mapping({"P": 2, "Q": 4}, {"P": 2}, {}, [{"C": 8, "R": 3, "S": 3}, {"K": 5}], ["QP", "P", ""])
    c2, row2 = both(layer, acc, T2, S2, O2)
    assert (c2.compute_cycles, c2.pipeline_cycles) == (576, 720) and row2[COL["pipeline_cycles"]] == 720
    assert c.accesses["rf"]["W"]["writes"] == 360 and c2.accesses["rf"]["W"]["writes"] == 720
    assert row2[COL["energy_pj"]] == c2.energy_pj
    # unfused, the same spatial factors do not fit the 4-PE rows
    flat = accelerator_from_dict({**acc.to_dict(), "array": [{"size": 4, "loops": ["C", "R", "S"]},
                                                             {"size": 4, "loops": ["K"]}]})
    assert evaluate_mapping(layer, flat, T, S, O).reason == "spatial factors exceed an array dimension's size"


def test_strided_window_moves_only_the_rows_it_reads():
    # 1x1 conv, stride 2, 3x3 outputs, 2 channels: the window's bounding box is 5x5 per channel,
    # but it reads rows and columns 0, 2, 4 only: 3x3 = 9 inputs per channel, 18 in all (the
    # bounding box would move 50). The same count at every level and in the lower bound.
    layer = Layer(name="s2", K=2, C=2, P=3, Q=3, stride=2)
    acc = toy_acc(["K"], ["C"])
    T, S, O = mapping({}, {"P": 3, "Q": 3}, {}, [{"K": 2}, {"C": 2}], ["", "QP", ""])
    c, row = both(layer, acc, T, S, O)
    assert c.accesses["dram"]["I"]["reads"] == 18 and compulsory_words(layer)["I"] == 18
    # RF: each of the 9 output pixels brings one input per PE (4 PEs): 36 writes; the GLB
    # sends the 2-channel footprint of one pixel (2 words) per pixel: 18 reads.
    assert c.accesses["rf"]["I"]["writes"] == 36 and c.accesses["glb"]["I"]["reads"] == 18
    assert row[COL["energy_pj"]] == c.energy_pj and row[COL["cycles"]] == c.cycles
    # dilation 2, 3x3 window, one output row of 2: reads rows {0, 2, 4} and columns {0, 2, 4, 6}
    # (stride 2, 2 outputs x 3 taps) = 3 x 4 = 12 of the 5 x 7 bounding box
    dil = Layer(name="d2", P=1, Q=2, R=3, S=3, stride=2, dilation=2)
    assert compulsory_words(dil)["I"] == 12
