"""HotNAS / FNAS ZCU102 template: hand-computed layers on both engines, resources, presets."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelerators.fpga import (FPGAError, HotNASDesign, check_resources, hotnas_layer, hotnas_network,
                               hotnas_resources, load_board, load_preset, preset_names)
from accelerators.fpga.search import HotNASSpace
from models.layer import Layer
from models.network import Network

ZCU102 = load_board("zcu102")
CONV = Layer(name="conv", K=16, C=8, P=8, Q=8, R=3, S=3)   # input 10 x 10 (halo of a 3x3)
DW = Layer(name="dw", G=8, K=1, C=1, P=8, Q=8, R=3, S=3, stride=2)  # input 17 x 17
D = HotNASDesign(Tm=8, Tn=4, Tr=6, Tc=6, Tmd=4, Ip=2, Op=3, Wp=5)


def test_conv_layer_by_hand():
    # output tile: ceil(6/1) = 6 rows/cols -> ceil(8/6) = 2 x 2 spatial tiles, ceil(16/8) = 2 channel tiles
    # load inputs  ceil(Tn Tr Tc / Ip) = ceil(4*6*6/2) = 72
    # load weights ceil(Tm Tn K^2 / Wp) = ceil(8*4*9/5) = ceil(57.6) = 58
    # compute      K^2 * 6 * 6 = 324  -> step = 324 (compute bound)
    # per output tile: max(ceil(N/Tn) * 324, store) = max(2*324, ceil(8*36/3) = 96) = 648
    # total = 8 output tiles * 648 + the last store 96 = 5280
    r = hotnas_layer(CONV, D, ZCU102)
    assert r.cycles == 5280 and r.bound == "compute" and r.engine == "conv"
    assert r.terms["tile_cycles"] == {"load_inputs": 72, "load_weights": 58, "compute": 324, "store_outputs": 96}
    # traffic: 16 loads of 4*36 input and 8*4*9 weight words; 8 stores of 8*36 output words; 2 bytes each
    assert r.terms["traffic_words"] == {"input": 2304, "weight": 4608, "output": 2304}
    assert r.dram_bytes == 2 * (2304 + 4608 + 2304)
    assert r.latency_ms == pytest.approx(5280 / 200e3)  # 200 MHz


def test_port_bound_layers_by_hand():
    # Tn = 8, Wp = 1: weights ceil(8*8*9/1) = 576 > compute 324 > inputs ceil(8*36/2) = 144
    # one input-channel step per tile: per tile max(576, ceil(8*36/3) = 96) = 576; 8 tiles + 96 = 4704
    r = hotnas_layer(CONV, HotNASDesign(Tm=8, Tn=8, Tr=6, Tc=6, Tmd=4, Ip=2, Op=3, Wp=1), ZCU102)
    assert (r.cycles, r.bound) == (4704, "weight-port")
    # Tm = 16, Op = 1: store ceil(16*36/1) = 576 > step max(144, ceil(16*8*9/5) = 231, 324) = 324
    # 1 channel tile x 4 spatial tiles: 4 * 576 + 576 = 2880
    r = hotnas_layer(CONV, HotNASDesign(Tm=16, Tn=8, Tr=6, Tc=6, Tmd=4, Ip=2, Op=1, Wp=5), ZCU102)
    assert (r.cycles, r.bound) == (2880, "output-port")
    # a 1x1 layer (8 -> 8 channels, 6x6) with Ip = 1: one tile whose step is
    # max(inputs ceil(8*36/1) = 288, weights ceil(8*8/5) = 13, compute 36) = 288 (input port);
    # store ceil(8*36/3) = 96 -> 288 + the last store 96 = 384
    one = Layer(name="pw", K=8, C=8, P=6, Q=6)
    r = hotnas_layer(one, HotNASDesign(Tm=8, Tn=8, Tr=6, Tc=6, Tmd=4, Ip=1, Op=3, Wp=5), ZCU102)
    assert (r.cycles, r.bound) == (384, "input-port")


def test_depthwise_layer_by_hand():
    # depthwise engine, Tmd = 4 of 8 channels; stride 2: ceil(6/2) = 3 output rows/cols per tile
    # -> ceil(8/3) = 3 x 3 spatial tiles x ceil(8/4) = 2 channel tiles = 18 tiles
    # inputs ceil(4*6*6/2) = 72, weights ceil(4*9/5) = 8, compute 9*3*3 = 81, store ceil(4*9/3) = 12
    # total = 18 * max(81, 12) + 12 = 1470
    r = hotnas_layer(DW, D, ZCU102)
    assert (r.cycles, r.engine, r.bound) == (1470, "dwconv", "compute")
    # without a depthwise engine (Tmd = 0) the conv engine runs the 8 groups one by one (M = N = 1):
    # 9 tiles x max(step = max(ceil(36/2) = 18, ceil(9/5) = 2, 81), ceil(9/3) = 3) + 3 = 732 per group
    r0 = hotnas_layer(DW, HotNASDesign(Tm=8, Tn=4, Tr=6, Tc=6, Tmd=0, Ip=2, Op=3, Wp=5), ZCU102)
    assert (r0.cycles, r0.engine) == (8 * 732, "conv")


def test_fully_connected_by_hand():
    # FC 20 -> 10 on Tm = 8, Tn = 4: 1x1 maps, inputs ceil(4/2) = 2, weights ceil(8*4/5) = 7, compute 1
    # 5 input-channel steps of 7 = 35 per output tile; 2 output tiles; + last store ceil(8/3) = 3 -> 73
    r = hotnas_layer(Layer.fc("fc", 20, 10), D, ZCU102)
    assert (r.cycles, r.bound) == (73, "weight-port")


def test_preset_resources_by_hand():
    # zcu102-1 = (Tm, Tn, Tmd, Ip, Op, Wp) = (160, 12, 576, 11, 8, 13), Tr = Tc = 32
    # DSP 160*12 + 576 = 2496 <= 2520; ports 16*(11+8+13) = 512 <= 512
    # 1024-word banks (32x32 16-bit) are one BRAM18 each, double-buffered:
    #   conv inputs 12*2 = 24, conv outputs 160*2 = 320, dw inputs 576*2 = 1152, dw outputs 1152
    #   -> 2648 BRAM18 = 1324 BRAM36 > 912
    # 9-word (3x3) weight banks are LUT RAM, 16 LUTs each: (1920 + 576) * 2 * 16 = 79872 LUTs
    p = load_preset("zcu102-1")
    res = hotnas_resources(p)
    assert (res.dsp, res.port_bits, res.bram18, res.lut) == (2496, 512, 2648, 79872)
    assert [(v.resource, v.used, v.available) for v in check_resources(p, ZCU102)] == [("BRAM36", 1324, 912)]


def test_which_presets_break_which_limit():
    # BRAM36 = (2 Tn + 2 Tm + 4 Tmd) / 2 with 1024-word banks; only zcu102-3 also exceeds the port width
    expected_bram = {"zcu102-1": 1324, "zcu102-2": 1324, "zcu102-3": 1324, "zcu102-4": 1324,
                     "zcu102-5": 12 + 130 + 2 * 832, "zcu102-6": 16 + 100 + 2 * 832, "zcu102-7": 8 + 220 + 2 * 704,
                     "zcu102-8": 16 + 100 + 2 * 832, "zcu102-9": 18 + 100 + 2 * 704}
    assert preset_names() == [f"zcu102-{i}" for i in range(1, 10)]
    for name in preset_names():
        p = load_preset(name)
        assert p.dsp <= 2520  # every preset fits the DSPs
        broken = {v.resource: v.used for v in check_resources(p, ZCU102)}
        assert broken.pop("BRAM36") == expected_bram[name]
        if name == "zcu102-3":
            assert broken == {"memory port width (bits)": 16 * (12 + 13 + 17)}
        else:
            assert broken == {}


def test_workload_sizing_and_errors():
    net = Network("n", (CONV, DW))
    res = hotnas_resources(D, net)
    # conv engine: inputs min(6, 10)^2 = 36 words, outputs 36; dw engine: inputs 36, outputs 3*3 = 9
    assert res.buffers["dw_output"]["depth_words"] == 9 and res.buffers["conv_input"]["depth_words"] == 36
    with pytest.raises(FPGAError, match="exceeds the design's Tk=1"):
        hotnas_network(net, HotNASDesign(8, 4, 6, 6, 4, 2, 3, 5, Tk=1), ZCU102)
    # on 64x64 maps the presets' 32x32 tiles are full: the same 1324 BRAM36 as above
    big = Network("big", (Layer(name="c", K=16, C=8, P=64, Q=64, R=3, S=3),
                          Layer(name="d", G=8, K=1, C=1, P=64, Q=64, R=3, S=3)))
    with pytest.raises(FPGAError, match="over budget on zcu102: BRAM36 1324 used > 912 available"):
        hotnas_network(big, load_preset("zcu102-1"), ZCU102, allow_over_budget=False)
    # on the small maps the banks shrink (e.g. 8x8 = 64-word depthwise outputs become LUT RAM)
    assert hotnas_resources(load_preset("zcu102-1"), net).bram18 < 2648
    with pytest.raises(FPGAError, match="unknown hotnas preset"):
        load_preset("zcu102-10")
    for bad in ("Tm=1", "Tm=1,Tn=1,Tr=1,Tc=1,Tmd=-1,Ip=1,Op=1,Wp=1", "Tm=1,Tn=1,Tr=1,Tc=1,Tmd=0,Ip=0,Op=1,Wp=1"):
        with pytest.raises(FPGAError):
            HotNASDesign.parse(bad)
    assert load_preset("ZCU102_4") == HotNASDesign(160, 12, 32, 32, 576, 10, 10, 10)


layers = st.one_of(
    st.builds(lambda k, c, p, r, s: Layer(name="c", K=k, C=c, P=p, Q=p, R=r, S=r, stride=s),
              st.integers(1, 80), st.integers(1, 80), st.integers(1, 40), st.sampled_from([1, 3, 5]),
              st.integers(1, 2)),
    st.builds(lambda g, p, r, s: Layer(name="d", G=g, K=1, C=1, P=p, Q=p, R=r, S=r, stride=s),
              st.integers(2, 100), st.integers(1, 40), st.sampled_from([3, 5, 7]), st.integers(1, 2)))
designs = st.builds(HotNASDesign, st.integers(1, 64), st.integers(1, 32), st.integers(1, 40), st.integers(1, 40),
                    st.integers(0, 128), st.integers(1, 12), st.integers(1, 12), st.integers(1, 12))


@settings(max_examples=150, deadline=None)
@given(layers, designs)
def test_invariants(layer, d):
    r = hotnas_layer(layer, d, ZCU102)
    lanes = d.Tmd if r.engine == "dwconv" else d.Tm * d.Tn
    assert r.cycles >= math.ceil(layer.macs / lanes)          # never faster than the MACs allow
    assert r.terms["traffic_words"]["weight"] >= layer.weight_elems
    # more port words per cycle never slow a layer down
    wider = HotNASDesign(d.Tm, d.Tn, d.Tr, d.Tc, d.Tmd, d.Ip + 1, d.Op + 1, d.Wp + 1)
    assert hotnas_layer(layer, wider, ZCU102).cycles <= r.cycles
    # the batched evaluation used by the search agrees with the per-layer path
    sp = HotNASSpace([layer], ZCU102, "latency")
    s = sp.evaluate({k: [getattr(d, k)] for k in ("Tm", "Tn", "Tmd", "Tr", "Tc", "Ip", "Op", "Wp")})
    assert int(s["cycles"][0]) == r.cycles
    res = hotnas_resources(d, [layer])
    assert (int(s["bram18"][0]), int(s["lut"][0]), int(s["dsp"][0])) == (res.bram18, res.lut, res.dsp)


def test_boards_as_data(tmp_path):
    from accelerators.fpga import board_names
    # device budgets as stated in issue 5 (vendor data sheets)
    expected = {"zcu102": (2520, 912), "vc707": (2800, 1030), "zc706": (900, 545), "ultra96": (360, 216),
                "pynq-z2": (220, 140)}
    assert sorted(board_names()) == sorted(expected)
    for name, (dsp, bram36) in expected.items():
        b = load_board(name)
        assert (b.dsp, b.bram36) == (dsp, bram36)
        assert b.ddr_bandwidth_gbs > 0 and b.clock_mhz > 0 and b.mem_port_bits >= 256
    assert load_board("PYNQ_Z2").name == "pynq-z2"
    # 17.06 GB/s at 200 MHz = 85.3 bytes per cycle
    assert ZCU102.ddr_bytes_per_cycle() == pytest.approx(17.06e9 / 200e6)
    with pytest.raises(FPGAError, match="unknown board 'zcu1020'"):
        load_board("zcu1020")
    bad = tmp_path / "b.yaml"
    bad.write_text("name: x\ndsp: -3\nbram36: 1\nlut: 1\nff: 1\nclock_mhz: 100\nddr_bandwidth_gbs: 1\n"
                   "mem_port_bits: 64\n")
    with pytest.raises(FPGAError, match="'dsp' must be > 0"):
        load_board(str(bad))
    bad.write_text("name: x\ndsp: 3\n")
    with pytest.raises(FPGAError, match="missing field"):
        load_board(str(bad))
    with pytest.raises(FPGAError, match="unknown key"):
        ZCU102.with_limits(dsps=1)
