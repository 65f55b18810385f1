"""Roofline placement of a mapped layer, hand-checked on the weight-stationary toy case."""
import pytest

from accelerators import evaluate_mapping, roofline

from test_cost_handcount import LAYER, mapping, toy_acc


def test_roofline_of_the_weight_stationary_case():
    acc = toy_acc(["K"], ["C"])
    T, S, O = mapping({"R": 3, "S": 3}, {"P": 2, "Q": 2}, {}, [{"K": 2}, {"C": 2}], ["SR", "QP", ""])
    r = roofline(acc, evaluate_mapping(LAYER, acc, T, S, O))
    # 4 PEs; GLB moves 168 words, DRAM 76 (see the hand count): intensities 144/168 and 144/76
    assert r["peak_macs_per_cycle"] == 4
    assert r["levels"]["glb"]["intensity_macs_per_word"] == pytest.approx(144 / 168)
    assert r["levels"]["dram"]["intensity_macs_per_word"] == pytest.approx(144 / 76)
    # attainable = min(4, I x bw): GLB 0.857 x 16 = 13.7 -> 4; DRAM 1.895 x 4 = 7.6 -> 4: compute-bound
    assert r["levels"]["glb"]["attainable_macs_per_cycle"] == 4
    assert r["levels"]["dram"]["ridge_macs_per_word"] == 1.0
    assert r["roof"] == "compute"
    assert r["achieved_macs_per_cycle"] == 144 / 55  # 17 start-up + 36 compute + 2 tail cycles


def test_roofline_memory_bound():
    from dataclasses import replace
    acc = toy_acc(["K"], ["C"])
    slow = replace(acc, dram=replace(acc.dram, bw_words_per_cycle=1))
    T, S, O = mapping({"R": 3, "S": 3}, {"P": 2, "Q": 2}, {}, [{"K": 2}, {"C": 2}], ["SR", "QP", ""])
    c = evaluate_mapping(LAYER, slow, T, S, O)
    r = roofline(slow, c)
    # DRAM: 1.895 MACs/word x 1 word/cycle = 1.895 < 4: DRAM is the roof. The layer is one GLB
    # tile, so its 76 words are all start-up (68) and tail (8), around 36 compute cycles: 112.
    assert r["roof"] == "dram" and c.bound == "dram" and c.cycles == 68 + 36 + 8
    assert r["levels"]["dram"]["attainable_macs_per_cycle"] == pytest.approx(144 / 76)
    assert r["achieved_macs_per_cycle"] == pytest.approx(144 / 112)
