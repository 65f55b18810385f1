"""Fused-stack geometry and on-chip accounting, counted by hand."""
import numpy as np
import pytest

from accelerators import accelerator_from_dict
from accelerators.cost import evaluate_mapping
from accelerators.schedule import Stack, check_stack, flow, plan_stack, stack_problem, stack_tiles
from models import DIMS
from models.errors import WorkloadError
from models.zoo import get_network
from models.zoo._builder import NetBuilder

IDX = {d: i for i, d in enumerate(DIMS)}


def toy_acc():
    """2x2 array (K on rows, C on columns), MAC 1, RF 1, NoC 2, GLB 6, DRAM 200 pJ, DRAM 4 words/cycle."""
    return accelerator_from_dict({
        "name": "toy", "clock_mhz": 100, "word_bits": 16,
        "array": [{"size": 2, "loops": ["K"]}, {"size": 2, "loops": ["C"]}],
        "rf": {"capacity_bytes": 128, "bw_words_per_cycle": None, "read_energy_pj": 1, "write_energy_pj": 1},
        "glb": {"capacity_bytes": 1024, "bw_words_per_cycle": 16, "read_energy_pj": 6, "write_energy_pj": 6},
        "dram": {"bw_words_per_cycle": 4, "read_energy_pj": 200, "write_energy_pj": 200},
        "mac_energy_pj": 1, "noc_energy_pj": 2,
    })


def block(res=16):
    """pw1 (1x1, 8 -> 24), dw (3x3 stride 2), pw2 (1x1, 24 -> 8) and a residual-free tail."""
    b = NetBuilder("blk", 8, res)
    b.conv("pw1", 24, 1).dwconv("dw", 3, stride=2).conv("pw2", 8, 1)
    return b.build(res)


def test_recompute_tiles_propagate_back_through_stride_and_kernel():
    net = block()
    tiles, tl = stack_tiles(list(net.layers), (2, 4), "recompute")
    # pw2's 8x8 output in 2x4 tiles: 4 x 2 = 8 tiles; dw computes the same 2x4, reading
    # (2-1)*2+3 = 5 rows and (4-1)*2+3 = 9 columns, which pw1 must produce
    assert tiles == 8
    assert [(t.P, t.Q) for t in tl] == [(5, 9), (2, 4), (2, 4)]
    assert tl[0].padding == 0 and tl[2].K == 8 and tl[1].G == 24
    # pw1 computes 24*8*5*9 = 8,640 MACs per tile, 69,120 in all against its 49,152
    assert tiles * tl[0].macs == 69_120 and net.layers[0].macs == 49_152
    assert tiles * tl[1].macs == net.layers[1].macs == 13_824


def test_cache_tiles_cut_every_layer_into_the_same_grid():
    net = block()
    tiles, tl = stack_tiles(list(net.layers), (2, 4), "cache")
    # a 4 x 2 grid: pw1's 16x16 map in 4x8 tiles, dw and pw2 in 2x4: no MAC computed twice
    assert tiles == 8 and [(t.P, t.Q) for t in tl] == [(4, 8), (2, 4), (2, 4)]
    assert all(tiles * t.macs == l.macs for t, l in zip(tl, net.layers))


def test_one_tile_keeps_the_layers_themselves():
    net = block()
    for tile in (None, (8, 8), (100, 100)):
        tiles, tl = stack_tiles(list(net.layers), tile)
        assert tiles == 1 and tl == list(net.layers)


def _whole_glb_mapping():
    """K=2 on the rows, C=2 on the columns, P=2 and Q=2 at the global buffer, nothing at DRAM."""
    T = np.ones((3, 8), np.int64)
    T[1, IDX["P"]] = T[1, IDX["Q"]] = 2
    S = np.ones((3, 8), np.int64)
    S[0, IDX["K"]] = S[1, IDX["C"]] = 2
    order = np.tile(np.arange(8), (3, 1))
    return T, S, order


def test_onchip_inputs_and_outputs_skip_dram_by_hand():
    from models import Layer
    acc, layer = toy_acc(), Layer(K=2, C=2, P=2, Q=2)
    m = _whole_glb_mapping()
    base = evaluate_mapping(layer, acc, *m)
    # one global-buffer tile holds the whole layer: W 4, I 8, O 8 words, each moved once
    assert base.accesses["dram"]["I"]["reads"] == 8 and base.accesses["glb"]["I"]["writes"] == 8
    assert base.startup_cycles == 3 and base.tail_cycles == 2  # (4 + 8) / 4 and 8 / 4
    inp = evaluate_mapping(layer, acc, *m, onchip=("I",))
    assert inp.accesses["dram"]["I"] == {"reads": 0, "writes": 0}
    assert inp.accesses["glb"]["I"]["writes"] == 0
    assert inp.accesses["glb"]["I"]["reads"] == base.accesses["glb"]["I"]["reads"]  # the array still reads it
    assert base.energy_pj - inp.energy_pj == 8 * (200 + 6)
    assert inp.startup_cycles == 1  # only the 4 weights
    out = evaluate_mapping(layer, acc, *m, onchip=("O",))
    assert out.accesses["dram"]["O"] == {"reads": 0, "writes": 0}
    assert base.energy_pj - out.energy_pj == 8 * (200 + 6)  # the DRAM write and the GLB read feeding it
    assert out.tail_cycles == 0
    with pytest.raises(ValueError, match="on-chip data spaces"):
        evaluate_mapping(layer, acc, *m, onchip=("X",))


def test_flow_of_mobilenet_v2_sees_residuals_and_joins():
    net = get_network("mobilenet_v2", resolution=32)
    fl = flow(net)
    names = [l.name for l in net.layers]
    i = names.index("features.3.conv.2")  # block 3 adds block 2's output
    assert fl.skips[i] == (names.index("features.2.conv.2"),)
    assert fl.consumers[names.index("features.2.conv.2")] == {names.index("features.3.conv.0.0"), i}
    assert not fl.joins[0] and not fl.joins[names.index("classifier.1")]  # first layer; FC after a pool
    assert all(fl.joins[1:names.index("classifier.1")])


def test_flow_of_resnet18_joins_the_downsample_as_a_branch():
    net = get_network("resnet18", resolution=32)
    fl = flow(net)
    names = [l.name for l in net.layers]
    after_pool = names.index("layer1.0.conv1")
    assert fl.joins[after_pool]  # across the stem's 3x3/2 max-pool (padded), a window like a conv's
    w = fl.pool(after_pool).window
    assert (w.name, w.R, w.S, w.stride, w.padding, w.P, w.Q, w.G) == ("maxpool", 3, 3, 2, 1, 8, 8, 64)
    # its output feeds layer1.0.conv1 and is the skip of the add fused into layer1.0.conv2
    assert fl.pool(after_pool).readers == {after_pool, after_pool + 1}
    assert fl.skips[after_pool + 1] == (-2,) and fl.skip_pool(after_pool + 1, 0) == after_pool
    assert fl.consumers[0] == {after_pool}  # the stem's output is read by the pool only
    ds, c1, add_at = (names.index(x) for x in ("layer2.0.downsample.0", "layer2.0.conv1", "layer2.0.conv2"))
    block_in = names.index("layer1.1.conv2")
    # the downsample reads the block input (a branch), not conv2
    assert fl.joins[ds] and fl.link(ds) == (block_in,) and not fl.chain(ds) and fl.chain(add_at)
    assert fl.skips[add_at] == (ds,) and fl.consumers[block_in] == {c1, ds}
    # conv2's add needs the downsample's output, computed after it: no stack holds both
    assert "comes after it in the stack" in stack_problem(net, fl, block_in, ds)
    assert "before the stack's first layer 'layer2.0.conv1'" in stack_problem(net, fl, c1, ds)
    assert stack_problem(net, fl, block_in, add_at) == "" and stack_problem(net, fl, ds, ds) == ""
    with pytest.raises(WorkloadError, match="comes after it"):
        check_stack(net, fl, Stack(block_in, ds))


def test_stack_plan_keeps_intermediates_and_skips_on_chip():
    net = get_network("mobilenet_v2", resolution=32)
    names = [l.name for l in net.layers]
    fl = flow(net)
    a, b = names.index("features.3.conv.0.0"), names.index("features.3.conv.2")
    acc = toy_acc()
    plan = plan_stack(net, fl, Stack(a, b, (2, 2)), acc, weights_onchip=False)
    assert plan.onchip == [{"O"}, {"I", "O"}, {"I"}]  # the stack reads its input and writes its output
    # the skip (block 2's output, the stack's input) is held while every layer runs: pw2's
    # 2x2x24 output tile, 96 words = 192 bytes, on top of the intermediate tiles
    t = plan.tile_layers
    assert plan.resident_bytes[0] == 2 * (t[0].output_elems + t[2].output_elems)
    assert plan.resident_bytes[2] == 2 * (t[2].input_elems + t[2].output_elems)


def test_networks_without_edges_refuse_fused_stacks():
    from models import Layer, Network
    net = Network("flat", [Layer.conv("a", 3, 8, 8, 3), Layer.conv("b", 8, 8, 8, 3)])
    with pytest.raises(WorkloadError, match="no graph edges"):
        flow(net)
