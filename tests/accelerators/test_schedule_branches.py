"""Fused stacks with branches and concatenations (a fire module), counted by hand."""
import pytest

from accelerators.memory import memory_profile, peak_memory
from accelerators.schedule import (Stack, check_stack, flow, fused_aux_onchip, plan_stack, stack_links,
                                   stack_problem, stack_windows)
from mappings.cache import MappingCache
from mappings.schedule import Schedule, StackMapper, evaluate_schedule
from models.errors import WorkloadError
from models.zoo._builder import NetBuilder


@pytest.fixture(scope="module")
def mapper(fire_net):
    return StackMapper(fire_net, "eyeriss", optimizer="heuristic", cache=MappingCache())


def test_flow_links_the_branches_and_the_concatenation(fire_net):
    fl = flow(fire_net)
    assert fl.joins == (False, True, True, True)
    assert [fl.link(i) for i in range(4)] == [(), (0,), (0,), (1, 2)]
    assert [fl.chain(i) for i in range(4)] == [False, True, False, False]
    assert fl.concats == {"cat": 3}
    # the concatenation's parts count as read by the layer after it, so they may stay on chip
    assert fl.consumers == ({1, 2}, {3}, {3}, frozenset())
    assert stack_links(fl, Stack(0, 1)) is None  # s -> e1 is a chain
    assert stack_links(fl, Stack(0, 3)) == [(), (0,), (0,), (1, 2)]


def test_recompute_takes_the_union_of_what_the_branches_read(fire_net):
    fl = flow(fire_net)
    _, _, tiles, tl, _ = stack_windows(fire_net, fl, Stack(0, 3, (4, 4), "recompute"))
    # m's 8x8 output in 4x4 tiles: 4 tiles. m (1x1) reads 4x4 of e1's and e3's outputs; e1 (1x1)
    # reads 4x4 of s's output, e3 (3x3) reads (4-1)+3 = 6x6 of it: s computes the union, 6x6
    assert tiles == 4 and [(t.P, t.Q) for t in tl] == [(6, 6), (4, 4), (4, 4), (4, 4)]
    # MACs: s 2*4*36 = 288 per tile, 1,152 in all against its 2*4*64 = 512; the others exact
    assert [tiles * t.macs for t in tl] == [1152, 512, 4608, 2048]
    assert [l.macs for l in fire_net.layers] == [512, 512, 4608, 2048]


def test_the_branch_input_stays_while_the_other_branch_runs(fire_net, mapper):
    fl = flow(fire_net)
    plan = plan_stack(fire_net, fl, Stack(0, 3, (4, 4), "recompute"), mapper.acc, weights_onchip=False)
    assert plan.onchip == [{"O"}, {"I", "O"}, {"I", "O"}, {"I"}]
    # 16-bit words. s: its 6x6x2 output tile (72 words). e1: s's whole tile (it reads 4x4 of it,
    # e3 reads all of it after) and its 4x4x4 output, 72 + 64. e3: s's tile, its output and e1's
    # output held for m, 72 + 64 + 64. m: its 4x4x8 input, the two parts side by side, 128
    assert plan.resident_bytes == [2 * 72, 2 * 136, 2 * 200, 2 * 128]


def test_dram_words_of_the_fire_module(fire_net, mapper):
    lbl = evaluate_schedule(fire_net, mapper.acc, mapper=mapper, aux=True)
    # layer by layer: s reads 4*64 and writes 2*64; e1 and e3 read 128 and write 4*64 each; m
    # reads the 8*64 concatenation and writes 4*64; the concatenation is a DRAM pass of its own
    assert [s.dram_words["activations"] for s in lbl.stacks] == [256 + 128, 128 + 256, 128 + 256, 512 + 256]
    assert lbl.dram_words["weights"] == 4 * 2 + 2 * 4 + 2 * 4 * 9 + 8 * 4 == 120
    assert lbl.aux[0]["dram_words"] == 512 + 512 and not lbl.aux[0]["onchip"]
    whole = evaluate_schedule(fire_net, mapper.acc, Schedule((Stack(0, 3),)), mapper=mapper, aux=True)
    # one stack, one tile: only s's input and m's output cross DRAM; the concatenation is free
    assert whole.dram_words == {"weights": 120, "activations": 256 + 256}
    assert whole.aux[0] == {"name": "cat", "kind": "concat", "cycles": 0, "energy_pj": 0.0, "dram_words": 0,
                            "onchip": True}
    rec = evaluate_schedule(fire_net, mapper.acc, Schedule((Stack(0, 3, (4, 4), "recompute"),)), mapper=mapper)
    # 4 tiles: s reads its 6x6x4 input tile each time (1x1 conv), 4*144 = 576 words, m writes 256
    assert rec.dram_words["activations"] == 4 * 144 + 256
    assert rec.macs - rec.layer_macs == 1152 - 512
    cache = evaluate_schedule(fire_net, mapper.acc, Schedule((Stack(0, 3, (4, 4), "cache"),)), mapper=mapper)
    assert cache.dram_words["activations"] == 256 + 256 and cache.macs == cache.layer_macs
    # a stack that ends before the concatenation's reader writes the parts to DRAM
    part = evaluate_schedule(fire_net, mapper.acc, Schedule((Stack(0, 2), Stack(3, 3))), mapper=mapper, aux=True)
    assert part.stacks[0].dram_words["activations"] == 256 + 256 + 256
    assert not part.aux[0]["onchip"]
    assert fused_aux_onchip(fire_net, flow(fire_net), [Stack(0, 3)]) == {"cat"}
    assert fused_aux_onchip(fire_net, flow(fire_net), [Stack(0, 2), Stack(3, 3)]) == set()


def test_stacks_that_cut_a_branch_are_refused(fire_net):
    fl = flow(fire_net)
    assert stack_problem(fire_net, fl, 0, 3) == "" and stack_problem(fire_net, fl, 1, 1) == ""
    assert stack_problem(fire_net, fl, 1, 2) == "layer 'e3' reads 's', before the stack's first layer 'e1'"
    assert stack_problem(fire_net, fl, 2, 3) == "layer 'm' reads 'e1', before the stack's first layer 'e3'"
    with pytest.raises(WorkloadError, match="layer 'e3' reads 's'"):
        check_stack(fire_net, fl, Stack(1, 3))


def test_patch_stage_across_the_fire_module(fire_net):
    """int8, one byte an element. Layer by layer the concatenation is a tensor of its own."""
    lbl = memory_profile(fire_net)
    # m: the 8x8x8 concatenation, its parts (read by it), its 4x8x8 output: 512 + 512 + 256
    assert [r["bytes"] for r in lbl.rows] == [256 + 128, 128 + 256, 128 + 256 + 256, 512 + 512 + 256]
    # one stage in 4x4 patches (tiles as in the schedule: s 6x6, e1 / e3 / m 4x4): m's output filled
    # whole (256). Per patch the largest moment is s's: its 6x6x4 input patch read from the
    # network input and its 6x6x2 output, 144 + 72; e1: 32 + 64 and the 40 of s's tile e3 still
    # reads; e3: 72 + 64 and e1's tile kept for m (64); m: its 128-element input
    assert memory_profile(fire_net, [Stack(0, 3, (4, 4))]).peak_bytes == 256 + 144 + 72
    # a stage ending at e3: both parts are read after it, so both are filled whole (2 x 256);
    # the output tiles go straight into them
    prof = memory_profile(fire_net, [Stack(0, 2, (4, 4)), Stack(3, 3)])
    assert prof.rows[0]["bytes"] == 512 + 144 + 72
    # a stage ending at e1 (a chain: s's tile is 4x4): s's output is still read by e3 after it,
    # so it is held whole (128) beside e1's (256); per patch s's 4x4x4 input and 4x4x2 output
    prof = memory_profile(fire_net, [Stack(0, 1, (4, 4)), Stack(2, 2), Stack(3, 3)])
    assert prof.rows[0]["bytes"] == 128 + 256 + 64 + 32
    best = peak_memory(fire_net, "patch", patches=2)
    assert (best.patch_layers, best.peak_sram_bytes) == (4, 472)


def _concat(second_reader=False, shrink=False):
    """a (1x1) feeding b1 (1x1) and b2 (3x3; stride 2 when ``shrink``), concatenated and read by
    m (and m2 when ``second_reader``)."""
    b = NetBuilder("cat", 4, 8)
    b.conv("a", 4, 1)
    mid = b.state()
    b.conv("b1", 4, 1).restore(mid).conv("b2", 4, 3, stride=2 if shrink else 1)
    elems = 4 * 64 + b.elems
    b.c, b.h, b.w = 8, 8, 8
    b.op("cat", "concat", elems, elems, inputs=("b1", "b2"))
    after = b.state()
    b.conv("m", 4, 1)
    if second_reader:
        b.restore(after).conv("m2", 4, 1)
    return b.build(8)


def test_concatenations_that_cannot_be_crossed():
    fl = flow(_concat(second_reader=True))
    assert not fl.joins[3] and "read by more than one operator" in fl.cuts[3]
    assert "'cat'" in stack_problem(_concat(second_reader=True), fl, 0, 3)
    fl = flow(_concat(shrink=True))
    assert fl.link(2) == (0,)  # a strided branch still joins
    assert not fl.joins[3] and "maps of different sizes" in fl.cuts[3]
    assert flow(_concat()).joins == (False, True, True, True)
