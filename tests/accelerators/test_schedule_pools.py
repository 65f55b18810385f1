"""Fused stacks across pooling operators: the pool's window in the tile propagation, its on-chip
output, its element operations per tile, and the DRAM words it saves, counted by hand."""
from dataclasses import dataclass

import pytest

from accelerators.schedule import (Stack, flow, plan_stack, pool_tile_ops, pool_window, stack_tile_windows,
                                   stack_tiles)
from mappings.cache import MappingCache
from mappings.schedule import Schedule, StackMapper, evaluate_schedule
from models import Layer
from models.network import AuxOp
from models.zoo import get_network
from models.zoo._builder import NetBuilder


def cpc(pool=None):
    """c1 (3x3, 4 -> 8 channels, 16x16), a 3x3/2 max-pool padded by 1 (to 8x8), c2 (3x3, 8 -> 8, 8x8).
    ``pool``: an operator replacing the pool (one that carries its own window)."""
    b = NetBuilder("cpc", 4, 16)
    b.conv("c1", 8, 3).pool("pool", 3, 2, padding=1).conv("c2", 8, 3)
    if pool is not None:
        b.aux[-1] = pool
    return b.build(16)


@dataclass(frozen=True)
class WindowPool(AuxOp):
    """A pooling operator that says its window (what ``accelerators.schedule.pool_window`` reads
    before inferring one from the sizes)."""

    kernel: int = 2
    stride: int = 2
    padding: int = 0


@pytest.fixture(scope="module")
def net():
    return cpc()


@pytest.fixture(scope="module")
def mapper(net):
    return StackMapper(net, "eyeriss", optimizer="heuristic", cache=MappingCache())


def test_the_pool_joins_the_two_convolutions(net):
    fl = flow(net)
    assert fl.joins == (False, True)
    p = fl.pool(1)
    w = p.window  # a 16x16 map to 8x8: the 3x3/2 window padded by 1 (the first that fits, as the zoo builds it)
    assert (p.name, w.G, w.K, w.C, w.P, w.Q, w.R, w.S, w.stride, w.padding) == ("pool", 8, 1, 1, 8, 8, 3, 3, 2, 1)
    assert (p.in_rows, p.in_cols) == (16, 16) and p.readers == {1}
    assert fl.consumers[0] == {1}  # c1's output is read by the pool only, so it can stay on chip
    assert fl.pool(0) is None


def test_recompute_tiles_propagate_through_the_pool_window(net):
    fl = flow(net)
    pool = fl.pool(1)
    tiles, tl, tp = stack_tile_windows(list(net.layers), (2, 8), "recompute", [None, pool.window])
    # c2's 8x8 output in 2x8 tiles: 4 tiles. c2 reads (2-1)+3 = 4 rows, (8-1)+3 = 10 columns of the
    # pool's output, clipped to its 8 columns: a 4x8 pool tile, which reads (4-1)*2+3 = 9 rows and
    # (8-1)*2+3 = 17 columns, clipped to c1's 16x16 map: c1 computes 9x16 per tile
    assert tiles == 4
    assert [(t.P, t.Q) for t in tl] == [(9, 16), (2, 8)]
    assert tp[0] is None and (tp[1].P, tp[1].Q, tp[1].H, tp[1].W_in) == (4, 8, 9, 17)
    assert pool.tile_input(tp[1]) == (9, 16)
    assert stack_tiles(list(net.layers), (2, 8), "recompute", [None, pool.window])[1] == tl
    # MACs: c1 computes 8*4*9*16*9 = 41,472 per tile, 165,888 in all against its 73,728
    assert tiles * tl[0].macs == 165_888 and net.layers[0].macs == 73_728
    assert tiles * tl[1].macs == net.layers[1].macs == 36_864
    # the pool: one operation per input element read, 8*9*16 = 1,152 per tile, 4,608 against 2,048
    assert pool_tile_ops(pool, tp[1], tiles, "recompute") == 1_152 and pool.op.in_elems == 2_048
    # square tiles: c2 2x2 -> 4x4 of the pool's output -> 9x9 of c1's, 16 tiles
    tiles, tl, tp = stack_tile_windows(list(net.layers), (2, 2), "recompute", [None, pool.window])
    assert tiles == 16 and [(t.P, t.Q) for t in tl] == [(9, 9), (2, 2)] and (tp[1].P, tp[1].Q) == (4, 4)
    assert tiles * pool_tile_ops(pool, tp[1], tiles, "recompute") == 16 * 8 * 81 == 10_368


def test_cache_tiles_cut_the_pool_into_the_same_grid(net):
    from accelerators.schedule import cache_elems
    fl = flow(net)
    pool = fl.pool(1)
    tiles, tl, tp = stack_tile_windows(list(net.layers), (2, 8), "cache", [None, pool.window])
    # a 4 x 1 grid: c1 16x16 in 4x16, the pool's 8x8 in 2x8 (reading 5 rows, 4 of them new), c2 in 2x8
    assert tiles == 4 and [(t.P, t.Q) for t in tl] == [(4, 16), (2, 8)]
    assert (tp[1].P, tp[1].Q, tp[1].H) == (2, 8, 5)
    assert pool_tile_ops(pool, tp[1], tiles, "cache") == 8 * 4 * 16  # no window computed twice
    assert tiles * pool_tile_ops(pool, tp[1], tiles, "cache") == pool.op.in_elems
    # the halo kept: (3 - 2) row of the pool's input across its (padded) 17 columns, 8 channels
    assert cache_elems(pool.window, tp[1]) == 8 * 1 * 17


def test_a_pool_that_says_its_window_is_taken_at_its_word():
    net = cpc(WindowPool("pool", "pool", 8 * 16 * 16, 8 * 8 * 8))
    pool = flow(net).pool(1)
    assert (pool.window.R, pool.window.stride, pool.window.padding) == (2, 2, 0)
    tiles, tl, tp = stack_tile_windows(list(net.layers), (2, 8), "recompute", [None, pool.window])
    # the 4x8 pool tile reads (4-1)*2+2 = 8 rows (not 9): c1 computes 8x16 per tile
    assert [(t.P, t.Q) for t in tl] == [(8, 16), (2, 8)] and (tp[1].H, tp[1].W_in) == (8, 16)
    # a window that does not produce the next layer's input is refused, and says so
    bad = WindowPool("pool", "pool", 8 * 16 * 16, 8 * 8 * 8, kernel=3, stride=3)
    text = pool_window(bad, cpc().layers[0], cpc().layers[1])
    assert isinstance(text, str) and "does not turn a 16x16 map" in text


def test_dram_words_with_and_without_the_fused_pool(net, mapper):
    lbl = evaluate_schedule(net, mapper.acc, mapper=mapper, aux=True)
    # layer by layer: c1 reads 4*16*16 = 1,024 words and writes 8*16*16 = 2,048; c2 reads 8*8*8 = 512
    # and writes 512; the pool is a DRAM pass of its own: 2,048 in, 512 out
    assert [s.dram_words["activations"] for s in lbl.stacks] == [1024 + 2048, 512 + 512]
    assert lbl.dram_words["weights"] == 8 * 4 * 9 + 8 * 8 * 9 == 864
    assert lbl.aux[0]["dram_words"] == 2048 + 512 and not lbl.aux[0]["onchip"]
    whole = evaluate_schedule(net, mapper.acc, Schedule((Stack(0, 1),)), mapper=mapper, aux=True)
    # fused: c1's output and c2's input stay on chip, the pool runs on chip (its 2,048 operations)
    assert whole.dram_words == {"weights": 864, "activations": 1024 + 512}
    assert whole.aux[0] == {"name": "pool", "kind": "pool", "cycles": -(-2048 // mapper.acc.num_pes),
                            "energy_pj": 2048 * mapper.acc.mac_energy_pj, "dram_words": 0, "onchip": True,
                            "ops": 2048}
    rec = evaluate_schedule(net, mapper.acc, Schedule((Stack(0, 1, (2, 8), "recompute"),)), mapper=mapper, aux=True)
    # 4 tiles: c1 reads its 11x18 input tile (halo and border counted as data) each time,
    # 4 * 4*11*18 = 3,168 words, and c2 writes its 512
    assert rec.dram_words["activations"] == 4 * 4 * 11 * 18 + 512 == 3680
    assert rec.macs - rec.layer_macs == 165_888 - 73_728  # the overlap c1 recomputes
    assert rec.stacks[0].pools[0]["ops"] == 4 * 1152 and rec.aux[0]["ops"] == 4608
    assert rec.aux[0]["cycles"] == 4 * -(-1152 // mapper.acc.num_pes)
    cache = evaluate_schedule(net, mapper.acc, Schedule((Stack(0, 1, (2, 8), "cache"),)), mapper=mapper, aux=True)
    assert cache.dram_words["activations"] == 1024 + 512 and cache.macs == cache.layer_macs
    assert cache.aux[0]["ops"] == 2048
    for sc in (whole, rec, cache):
        assert sc.stacks[0].to_dict()["pools"][0]["name"] == "pool"
    assert "pools" not in lbl.stacks[0].to_dict()


def test_the_pool_tiles_are_held_in_the_global_buffer(net, mapper):
    fl = flow(net)
    plan = plan_stack(net, fl, Stack(0, 1, (2, 8), "recompute"), mapper.acc, weights_onchip=False)
    assert plan.onchip == [{"O"}, {"I"}]
    # 16-bit words: c1 holds its 9x16x8 output tile, c2 its 4x10x8 input tile; while the pool runs,
    # its 9x16x8 input and 4x8x8 output tiles
    assert plan.resident_bytes == [2 * 9 * 16 * 8, 2 * 4 * 10 * 8]
    assert plan.pool_bytes == [None, 2 * (9 * 16 * 8 + 4 * 8 * 8)]
    sc = mapper.cost(Stack(0, 1, (2, 8), "recompute"))
    assert sc.peak_glb_bytes >= max(plan.pool_bytes[1], max(plan.resident_bytes))


def test_layer_by_layer_ignores_the_pool_window(net, mapper):
    lbl = evaluate_schedule(net, mapper.acc, mapper=mapper)
    assert all(not s.pools for s in lbl.stacks)
    assert lbl.dram_words == {"weights": 864, "activations": 4096}


def test_resnet18_stem_pool_and_first_block():
    net = get_network("resnet18", resolution=32)
    names = [l.name for l in net.layers]
    c1, c2 = names.index("layer1.0.conv1"), names.index("layer1.0.conv2")
    sm = StackMapper(net, "eyeriss", optimizer="heuristic", cache=MappingCache())
    rest = tuple(Stack(i, i) for i in range(c2 + 1, len(names)))
    # conv1 .. layer1.0.conv2: the max-pool's output is layer1.0's skip, held on chip until its add
    sc = evaluate_schedule(net, sm.acc, Schedule((Stack(0, c2, (4, 4), "recompute"),) + rest), mapper=sm, aux=True)
    rows = {r["name"]: r for r in sc.aux}
    assert rows["maxpool"]["onchip"] and rows["maxpool"]["dram_words"] == 0
    assert rows["layer1.0.add"]["onchip"]
    plan = plan_stack(net, flow(net), Stack(0, c2, (4, 4), "recompute"), sm.acc, weights_onchip=False)
    t = plan.tile_layers
    # the skip tile (4x4x64, the add's output tile) is held beside layer1.0.conv2's input tile
    assert plan.resident_bytes[2] == 2 * (t[2].input_elems + t[2].output_elems)
    assert plan.resident_bytes[1] == 2 * (t[1].input_elems + t[1].output_elems + t[2].output_elems)
    # conv1 .. layer1.0.conv1: the add comes after the stack, so the pool's output goes to DRAM
    sc = evaluate_schedule(net, sm.acc, Schedule((Stack(0, c1),) + tuple(Stack(i, i) for i in range(c2, len(names)))),
                           mapper=sm, aux=True)
    rows = {r["name"]: r for r in sc.aux}
    assert rows["maxpool"]["onchip"] and rows["maxpool"]["dram_words"] == 64 * 8 * 8
    assert not rows["layer1.0.add"]["onchip"]


def test_what_still_cuts_a_stack():
    # a global pool (MobileNetV3's head: final expand, pool, feature mix)
    b = NetBuilder("head", 16, 7)
    b.conv("expand", 96, 1).adaptive_pool("gap", 1).conv("mix", 128, 1)
    fl = flow(b.build(7))
    assert fl.joins == (False, False) and "whole map" in fl.cuts[1]
    sq = get_network("squeezenet1_1")
    names = [l.name for l in sq.layers]
    fl = flow(sq)
    assert fl.joins[names.index("features.3.squeeze")]  # across the first pool (3x3/2, ceil mode)
    assert (fl.pool(1).window.R, fl.pool(1).window.stride, fl.pool(1).window.P) == (3, 2, 55)
    # a concatenation, and a pool of one, are crossed: their parts stay on chip
    for name, parts, pooled in (("features.4.squeeze", ("features.3.expand1x1", "features.3.expand3x3"), False),
                                ("features.6.squeeze", ("features.4.expand1x1", "features.4.expand3x3"), True)):
        i = names.index(name)
        assert fl.joins[i] and fl.link(i) == tuple(names.index(p) for p in parts)
        assert (fl.pool(i) is not None) == pooled
    assert fl.concats["features.4.concat"] == names.index("features.6.squeeze")
    assert all(fl.joins[1:])
    # ResNet-50: the max-pool's output is also read by layer1.0's downsample
    r50 = get_network("resnet50", resolution=64)
    names = [l.name for l in r50.layers]
    assert flow(r50).pool(1).readers == {1, names.index("layer1.0.downsample.0")}


def test_only_convolutions_join_across_a_pool():
    # only convolutions join: an FC layer after a pool does not
    b = NetBuilder("cf", 8, 8)
    b.conv("a", 8, 3).pool("p", 2, 2).fc("f", 10)
    assert flow(b.build(8)).joins == (False, False)
    assert isinstance(pool_window(AuxOp("p", "pool", 8 * 64, 8 * 16), Layer.conv("a", 8, 8, 8, 3),
                                  Layer.conv("b", 8, 8, 4, 3)), Layer)
