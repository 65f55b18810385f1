"""Our cost model against ZigZag on the same hardware (codesign validate zigzag)."""
import json

import pytest

from codesign.validation.peers import zigzag_compare as zc
from codesign.validation.peers.layerset import peer_layers
from codesign.validation.peers.zigzag import load_data
from mappings.optimizers import optimize

DATA = load_data()
LAYERS = {layer.name: layer for layer in peer_layers()}


def _record(hw, layer):
    return next(r for r in DATA["records"] if r["hardware"] == hw and r["layer"] == layer)


def test_tpu_like_translation_by_hand():
    # tpu_like: W in a 128-byte per-PE register (8-bit port, 0.095 pJ), outputs in a 2-byte
    # per-PE register (16-bit ports, 0.021 pJ), inputs and outputs in a 2 MB SRAM (2048-bit
    # ports, 416.16 / 378.4 pJ), DRAM 64 bits (700 / 750 pJ). Per 16-bit word: W RF
    # 0.095 x 16 / 8 = 0.19, O RF 0.021, SRAM read 416.16 x 16 / 2048 = 3.25125, DRAM read 175.
    rec = _record("tpu_like", "r18.layer3.conv")
    acc = zc.accelerator("tpu_like", DATA["hardware"]["tpu_like"], rec["spatial_mapping"], LAYERS["r18.layer3.conv"])
    assert acc.rf.bypass == ("I",) and acc.glb.bypass == ("W",)
    assert acc.rf.split_bytes == {"W": 256, "O": 4}  # one copy's worth, double-buffered
    assert acc.rf.energies("W") == pytest.approx((0.19, 0.19)) and acc.rf.energies("O") == pytest.approx((0.021, 0.021))
    assert acc.glb.energies("I") == pytest.approx((3.25125, 378.4 * 16 / 2048))
    assert acc.dram.bw_bits_per_cycle == 64 and acc.dram.energies("W") == pytest.approx((175, 187.5))
    assert [a.size for a in acc.array] == [32, 32] and acc.array[0].loops == ("K",) and acc.array[1].loops == ("C",)
    assert acc.word_bits == {"W": 8, "I": 8, "O": 16} and acc.noc_energy_pj == 0
    # the SRAM's ports move 2048 bits but access 64 at the least (ZigZag's bandwidth_min), DRAM 64;
    # finished outputs are 8-bit (ZigZag's O_final) from the SRAM on
    assert acc.glb.access_bits == {"I": 64, "O": 64} and acc.dram.access_bits == {"W": 64, "I": 64, "O": 64}
    assert acc.narrow_outputs_at == "glb"


def test_narrow_transfers_pay_whole_sram_accesses_as_in_zigzag():
    # mbv2.dw112 on tpu_like: the fixed K x C unrolling leaves one PE busy, which takes one 8-bit
    # input per MAC straight from the SRAM (no input register). ZigZag charges each a whole 64-bit
    # access: 3,612,672 x 64 / 2048 = 112,896 full-port reads x 416.16 pJ = 46.98 uJ of the
    # layer's 126.42 uJ (47.58 with the SRAM's input writes). Charged per 8-bit word it was 6.4.
    layer = LAYERS["mbv2.dw112"]
    rec = _record("tpu_like", "mbv2.dw112")
    assert rec["accesses"]["I"]["sram_2MB"]["reads"] == 3_612_672 * 64 // 2048
    acc = zc.accelerator("tpu_like", DATA["hardware"]["tpu_like"], rec["spatial_mapping"], layer)
    c = zc.best_near_fastest(layer, acc)
    assert c.energy_pj == pytest.approx(rec["energy_pj"]["total"], rel=0.005)
    assert c.energy_by_space["I"] >= 3_612_672 * 416.16 * 64 / 2048


def test_edge_tpu_like_four_dimensions_become_three():
    rec = _record("edge_tpu_like", "r18.layer3.conv")
    acc = zc.accelerator("edge_tpu_like", DATA["hardware"]["edge_tpu_like"], rec["spatial_mapping"])
    assert [a.size for a in acc.array] == [8, 8, 16] and acc.array[2].loops == ("Q", "P")


def test_weight_bound_fc_latency_agrees_with_zigzag():
    # r18.fc on tpu_like is DRAM-bound on its 512,000 8-bit weights over a 64-bit port: about
    # 64,000 cycles in both tools (ZigZag: 63,739).
    layer = LAYERS["r18.fc"]
    rec = _record("tpu_like", "r18.fc")
    acc = zc.accelerator("tpu_like", DATA["hardware"]["tpu_like"], rec["spatial_mapping"], layer)
    c = optimize(layer, acc, objective="latency").cost
    assert c.bound == "dram"
    assert c.cycles == pytest.approx(rec["latency_cycles"]["total"], rel=0.02)
    assert c.cycles >= 512 * 1000 * 8 // 64


def test_cli_on_a_two_layer_file(tmp_path, capsys):
    from codesign.cli import main

    sub = dict(DATA, records=[_record("eyeriss_like", "r18.layer4.conv"), _record("eyeriss_like", "bert.ffn1"),
                              _record("tpu_like", "bert.ffn1")])
    path = tmp_path / "zz.json"
    path.write_text(json.dumps(sub))
    assert main(["validate", "zigzag", "--data", str(path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert {(r["hardware"], r["layer"]) for r in res["rows"]} == {
        ("eyeriss_like", "r18.layer4.conv"), ("eyeriss_like", "bert.ffn1"), ("tpu_like", "bert.ffn1")}
    assert res["summary"]["tpu_like"]["latency_srcc"] is None  # one layer: no rank correlation
    # layers where the two models agree within 10 % on latency
    assert all(abs(r["latency_ratio"] - 1) <= 0.10 for r in res["rows"])
    assert main(["validate", "zigzag", "--data", str(path), "--layers"]) == 0
    assert "bert.ffn1" in capsys.readouterr().out


def test_malformed_data_is_one_clear_error(tmp_path, capsys):
    from codesign.cli import main

    path = tmp_path / "bad.json"
    path.write_text(json.dumps(dict(DATA, records=[{"hardware": "tpu_like"}])))
    assert main(["validate", "zigzag", "--data", str(path)]) == 2
    assert "malformed" in capsys.readouterr().err
