"""Whole-network evaluation: per-layer results in order, totals, lower bounds, errors."""
import json
import math

import pytest

from accelerators import load_accelerator
from accelerators.cost import evaluate_mapping, lower_bound
from accelerators.spec import accelerator_from_dict
from mappings.cache import MappingCache
from mappings.evaluate import evaluate_network
from models.errors import CodesignError, MappingError
from models.layer import Layer
from models.network import Network


def toy():
    return Network("toy", [
        Layer.conv("stem", 3, 16, 8, 3, stride=2),
        Layer.conv("dw", 16, 16, 8, 3, groups=16),
        Layer.conv("pw", 16, 32, 8, 1),
        Layer.conv("dw2", 16, 16, 8, 3, groups=16),
        Layer.fc("fc", 32, 10),
    ])


@pytest.mark.parametrize("preset", ["eyeriss", "simba"])
def test_totals_add_up_from_independently_costed_layers(preset):
    acc = load_accelerator(preset)
    nc = evaluate_network(toy(), acc, cache=MappingCache())
    assert [l.name for l in nc.layers] == ["stem", "dw", "pw", "dw2", "fc"]
    assert nc.distinct_shapes == 4
    cycles = energy = 0
    lb_cycles = lb_energy = 0
    for l in nc.layers:
        c = evaluate_mapping(l.layer, acc, *l.mapping.to_arrays())
        lb = lower_bound(l.layer, acc)
        assert c.valid and c.cycles == l.cost.cycles and c.energy_pj == l.cost.energy_pj
        assert l.ratio_to_lower_bound == pytest.approx(c.edp / lb.edp) and l.ratio_to_lower_bound >= 1
        cycles += c.cycles
        energy += c.energy_pj
        lb_cycles += lb.cycles
        lb_energy += lb.energy_pj
    t = nc.total
    assert t.macs == toy().macs and t.cycles == cycles
    assert t.energy_pj == pytest.approx(energy, rel=1e-12)
    assert sum(t.energy_by_component.values()) == pytest.approx(energy, rel=1e-12)
    assert t.edp == pytest.approx(energy * cycles, rel=1e-12)
    assert t.latency_ms == pytest.approx(cycles / (acc.clock_mhz * 1e3))
    assert t.utilization == pytest.approx(t.macs / (cycles * acc.num_pes)) and 0 < t.utilization <= 1
    assert t.lower_bound_edp == pytest.approx(lb_energy * lb_cycles, rel=1e-12)
    assert t.ratio_to_lower_bound >= 1


def test_json_has_layers_and_total_and_no_nan():
    d = evaluate_network(toy(), "shidiannao", cache=False).to_dict()
    text = json.dumps(d, allow_nan=False)
    assert set(d["total"]) >= {"macs", "cycles", "latency_ms", "energy_pj", "edp", "utilization",
                               "energy_by_component", "lower_bound_edp", "ratio_to_lower_bound"}
    assert [l["name"] for l in d["layers"]] == ["stem", "dw", "pw", "dw2", "fc"]
    for l in d["layers"]:
        assert {"dims", "mapping", "lower_bound", "ratio_to_lower_bound", "cycles", "energy_pj"} <= set(l)
        assert math.isfinite(l["ratio_to_lower_bound"])
    assert "NaN" not in text and "Infinity" not in text


def test_layer_that_fits_nowhere_is_a_clear_error():
    acc = accelerator_from_dict({
        "name": "narrow", "word_bits": 32, "array": [{"size": 4, "loops": ["K"]}],
        "rf": {"capacity_bytes": {"W": 4, "I": 2, "O": 4}}, "glb": {"capacity_bytes": 4096, "bw_words_per_cycle": 4},
        "dram": {"bw_words_per_cycle": 1}})
    with pytest.raises(MappingError) as e:
        evaluate_network(toy(), acc, cache=False)
    assert "layer 'stem'" in str(e.value) and "register file" in str(e.value) and "I needs 4 B" in str(e.value)


def test_bad_arguments():
    with pytest.raises(CodesignError, match="unknown accelerator"):
        evaluate_network(toy(), "no-such-chip")
    with pytest.raises(MappingError, match="unknown mapping optimizer"):
        evaluate_network(toy(), "eyeriss", optimizer="magic")


def test_aux_ops_cost_by_hand_and_add_to_the_totals():
    import dataclasses

    from accelerators import load_accelerator
    from mappings.evaluate import aux_cost, evaluate_network
    from models.layer import Layer
    from models.network import AuxOp, Network

    acc = load_accelerator("eyeriss")  # 168 PEs, DRAM 19.2 bits/cycle, 16-bit words
    assert acc.num_pes == 168 and acc.dram.bw_bits_per_cycle == 19.2
    op = AuxOp("add", "add", in_elems=1000, out_elems=500)
    a = aux_cost(op, acc)
    # 1500 words x 16 bits over 19.2 bits/cycle = 1250 cycles > ceil(1000 / 168) = 6 compute cycles
    assert a.cycles == 1250 and a.bound == "dram" and a.dram_words == 1500
    assert a.latency_ms == pytest.approx(1250 / 200e3)
    assert a.energy_by_component["dram"] == pytest.approx(1000 * acc.dram.read_energy_pj + 500 * acc.dram.write_energy_pj)
    assert a.energy_by_component["mac"] == pytest.approx(1000 * acc.mac_energy_pj)
    wide = dataclasses.replace(acc, dram=dataclasses.replace(acc.dram, bw_bits_per_cycle=160_000))
    b = aux_cost(op, wide)
    assert b.cycles == 6 and b.bound == "compute"  # ceil(1000 / 168)

    net = Network("n", (Layer.conv("c", 8, 16, 14, 3),), aux=(op, AuxOp("pool", "pool", 784, 196)))
    plain = evaluate_network(net, acc, optimizer="heuristic", cache=False)
    full = evaluate_network(net, acc, optimizer="heuristic", cache=False, aux=True)
    assert plain.aux == [] and len(full.aux) == 2
    extra_cycles = sum(x.cycles for x in full.aux)
    assert full.total.cycles == plain.total.cycles + extra_cycles
    assert full.total.energy_pj == pytest.approx(plain.total.energy_pj + sum(x.energy_pj for x in full.aux))
    assert full.total.energy_by_component["dram"] == pytest.approx(
        plain.total.energy_by_component["dram"] + sum(x.energy_by_component["dram"] for x in full.aux))
    assert full.total.lower_bound_edp == plain.total.lower_bound_edp  # the bound is the MAC layers'
    assert [d["name"] for d in full.to_dict()["aux"]] == ["add", "pool"]
    assert "aux" not in plain.to_dict()
