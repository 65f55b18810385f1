"""Whole-network cost under a schedule: layer-by-layer is today's cost, fused stacks save DRAM."""
import pytest

from accelerators.schedule import Stack
from mappings.cache import MappingCache
from mappings.evaluate import evaluate_network
from mappings.schedule import Schedule, StackMapper, evaluate_schedule, layer_by_layer, schedule_from_dict
from models.errors import WorkloadError
from models.zoo import get_network
from models.zoo._builder import NetBuilder


@pytest.fixture(scope="module")
def mbv2():
    return get_network("mobilenet_v2", resolution=32)


def test_layer_by_layer_schedule_is_evaluate_network_exactly(mbv2):
    ref = evaluate_network(mbv2, "eyeriss", optimizer="heuristic", cache=MappingCache())
    sc = evaluate_schedule(mbv2, "eyeriss", optimizer="heuristic", cache=MappingCache())
    assert sc.cycles == ref.total.cycles
    assert sc.energy_pj == ref.total.energy_pj
    assert sc.energy_by_component == ref.total.energy_by_component
    assert sc.macs == sc.layer_macs == ref.total.macs
    # with the non-MAC operators too
    ref = evaluate_network(mbv2, "eyeriss", optimizer="heuristic", aux=True)
    sc = evaluate_schedule(mbv2, "eyeriss", optimizer="heuristic", aux=True)
    assert sc.cycles == ref.total.cycles and sc.energy_pj == pytest.approx(ref.total.energy_pj, rel=1e-12)


def two_pointwise():
    b = NetBuilder("pp", 8, 8)
    b.conv("a", 8, 1).conv("b", 8, 1)
    return b.build(8)


def test_fusing_two_pointwise_layers_drops_the_intermediate_from_dram():
    net = two_pointwise()
    sm = StackMapper(net, "eyeriss", optimizer="heuristic", cache=MappingCache())
    lbl = evaluate_schedule(net, sm.acc, mapper=sm)
    fused = evaluate_schedule(net, sm.acc, Schedule((Stack(0, 1),)), mapper=sm)
    # every tensor is 8 x 8 x 8 = 512 words; layer by layer reads a's input and b's input and
    # writes both outputs (2,048 words); fused, only a's input and b's output move (1,024)
    assert lbl.dram_words["activations"] == 2048
    assert fused.dram_words["activations"] == 1024
    assert fused.dram_words["weights"] == lbl.dram_words["weights"] == 128
    assert fused.energy_pj < lbl.energy_pj and fused.macs == lbl.macs
    assert fused.stacks[0].peak_glb_bytes >= 2 * 512 * 2  # a's output tile is held beside b's
    for sc in (lbl, fused):  # every pJ but the MACs' belongs to a data space
        assert sum(sc.energy_by_space.values()) + sc.energy_by_component["mac"] == pytest.approx(sc.energy_pj,
                                                                                                 rel=1e-12)


def test_a_stack_that_does_not_fit_is_a_clear_error(mbv2):
    big = get_network("mobilenet_v2", resolution=224)
    names = [l.name for l in big.layers]
    a, b = names.index("features.2.conv.0.0"), names.index("features.2.conv.2")
    stacks = [Stack(i, i) for i in range(a)] + [Stack(a, b)] + [Stack(i, i) for i in range(b + 1, len(names))]
    with pytest.raises(WorkloadError, match="global buffer"):
        evaluate_schedule(big, "eyeriss", Schedule(tuple(stacks)), optimizer="heuristic")


@pytest.mark.parametrize("stacks, match", [
    ([Stack(0, 0)], "are in no stack"),
    ([Stack(1, 1)], "expected a stack starting at"),
])
def test_schedules_must_cover_the_layers_in_order(mbv2, stacks, match):
    with pytest.raises(WorkloadError, match=match):
        evaluate_schedule(mbv2, "eyeriss", Schedule(tuple(stacks)), optimizer="heuristic")


def test_a_stack_across_a_global_pool_is_refused():
    b = NetBuilder("gp", 8, 8)
    b.conv("a", 16, 3).adaptive_pool("gap", 1).conv("b", 8, 1)
    net = b.build(8)
    with pytest.raises(WorkloadError, match=r"cannot share a stack: the pool 'gap' between them cannot be crossed: "
                                            r"its window is the whole map \(a global or adaptive pool\)"):
        evaluate_schedule(net, "eyeriss", Schedule((Stack(0, 1),)), optimizer="heuristic")


def test_a_stack_across_the_stem_max_pool_is_costed():
    net = get_network("resnet18", resolution=32)
    stacks = [Stack(0, 1)] + [Stack(i, i) for i in range(2, len(net.layers))]
    sc = evaluate_schedule(net, "eyeriss", Schedule(tuple(stacks)), optimizer="heuristic", cache=MappingCache())
    assert [p["name"] for p in sc.stacks[0].pools] == ["maxpool"]


def test_schedule_files_round_trip_by_layer_name(mbv2):
    sched = Schedule((Stack(0, 2, (4, 16), "cache"),) + tuple(Stack(i, i) for i in range(3, len(mbv2.layers))))
    back = schedule_from_dict(sched.to_dict(mbv2), mbv2)
    assert back.stacks == sched.stacks
    d = sched.to_dict(mbv2)
    d["stacks"][0]["layers"] = ["nope", "features.1.conv.1"]
    with pytest.raises(WorkloadError, match="no layer 'nope'"):
        schedule_from_dict(d, mbv2)
    d["stacks"][0] = {"layers": ["features.0.0"], "tile": [0, 3]}
    with pytest.raises(WorkloadError, match="tile"):
        schedule_from_dict(d, mbv2)
    assert layer_by_layer(mbv2).stacks[5] == Stack(5, 5)
