"""Zhang et al. (FPGA'15) loop-tiling model: hand-computed layers, buffers, and the AlexNet
cross-layer optimum <Tm, Tn> = <64, 7> of the paper."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelerators.fpga import FPGAError, Zhang15Design, load_board, zhang15_layer, zhang15_network
from accelerators.fpga.search import Zhang15Space, search_design
from models.layer import Layer
from models.network import Network


def board(clock_mhz=100.0, ddr_gbs=1.6):
    return load_board("vc707").with_limits(clock_mhz=clock_mhz, ddr_bandwidth_gbs=ddr_gbs)


SMALL = Layer(name="small", K=8, C=4, P=6, Q=6, R=3, S=3)  # M=8, N=4, R=C=6, K=3, S=1
D = Zhang15Design(Tm=4, Tn=2, Tr=3, Tc=3)                  # fp32


def test_small_layer_by_hand_compute_bound():
    # compute cycles = ceil(M/Tm) ceil(N/Tn) R C K^2 = 2 * 2 * 6 * 6 * 9 = 1296
    # ops = 2 M N R C K^2 = 2 * 8 * 4 * 36 * 9 = 20736 -> roof 16 ops/cycle = 2 Tm Tn -> 1.6 GOPS at 100 MHz
    # beta_in = Tn (S Tr + K - S)(S Tc + K - S) = 2 * 5 * 5 = 50, beta_w = Tm Tn K^2 = 72, beta_out = Tm Tr Tc = 36
    # alpha_in = alpha_w = 2*2*2*2 = 16 tiles, alpha_out = 2*2*2 = 8
    # words = 16*50 + 16*72 + 8*36 = 800 + 1152 + 288 = 2240 -> 8960 bytes in fp32
    # 1.6 GB/s at 100 MHz = 16 B/cycle -> 560 memory cycles < 1296: compute bound
    r = zhang15_layer(SMALL, D, board(ddr_gbs=1.6))
    assert r.cycles == 1296
    assert r.bound == "compute"
    t = r.terms
    assert t["compute_cycles"] == 1296 and t["memory_cycles"] == 560
    assert (t["beta_in_words"], t["beta_w_words"], t["beta_out_words"]) == (50, 72, 36)
    assert (t["alpha_in"], t["alpha_out"]) == (16, 8)
    assert t["traffic_words"] == {"input": 800, "weight": 1152, "output": 288}
    assert r.dram_bytes == 8960
    assert t["ctc_ops_per_byte"] == pytest.approx(20736 / 8960)
    assert t["roof_gops"] == pytest.approx(1.6)
    assert t["attainable_gops"] == pytest.approx(1.6)
    assert r.latency_ms == pytest.approx(1296 / 100e6 * 1e3)
    assert r.gops == pytest.approx(20736 / (1296 / 100e6) / 1e9)


def test_small_layer_by_hand_memory_bound():
    # 0.4 GB/s at 100 MHz = 4 B/cycle: 8960 / 4 = 2240 cycles > 1296 compute cycles
    # attainable = CTC x bandwidth = (20736 / 8960) ops/B x 0.4 GB/s = 0.9257 GOPS
    r = zhang15_layer(SMALL, D, board(ddr_gbs=0.4))
    assert r.bound == "memory"
    assert r.cycles == 2240
    assert r.terms["attainable_gops"] == pytest.approx(20736 / 8960 * 0.4)
    assert r.gops == pytest.approx(20736 / 8960 * 0.4)
    assert r.latency_ms == pytest.approx(0.0224)


def test_small_layer_resources_by_hand():
    # DSP: Tm Tn x 5 (fp32) = 40; x 1 in 16-bit fixed point = 8
    # banks (double-buffered, 2 copies): input 2 banks of 5*5 = 25 words, weight 8 banks of 9 words,
    # output 4 banks of 9 words; all <= 64 words -> LUT RAM of 32 bits x ceil(depth/64) = 32 LUTs
    # LUTs = 2*2*32 + 8*2*32 + 4*2*32 = 128 + 512 + 256 = 896, no BRAM
    r = zhang15_layer(SMALL, D, board())
    assert r.resources.dsp == 40
    assert r.resources.bram18 == 0 and r.resources.lut == 896
    assert zhang15_layer(SMALL, Zhang15Design(4, 2, 3, 3, dtype="fix16"), board()).resources.dsp == 8


def test_small_layer_energy_by_hand():
    # VC707 power numbers: static 0.35 W, 10 pJ per DSP-cycle, 6 pJ per BRAM18-cycle, 160 pJ per DRAM byte
    # 1296 cycles at 100 MHz = 12.96 us: static 0.35 * 12.96e-6 = 4.536e-6 J
    # DSP 40 * 1296 * 10e-12 = 5.184e-7 J; BRAM none; DRAM 8960 * 160e-12 = 1.4336e-6 J -> 6.488e-6 J
    r = zhang15_layer(SMALL, D, board(ddr_gbs=1.6))
    assert r.energy_mj == pytest.approx(6.488e-3)
    net = zhang15_network(Network("one", (SMALL,)), D, board(ddr_gbs=1.6))
    assert net.energy["energy_mj"] == pytest.approx(6.488e-3)
    assert net.energy["edp_j_s"] == pytest.approx(6.488e-6 * 12.96e-6)
    assert net.energy["power_w"] == pytest.approx(6.488e-6 / 12.96e-6)


def test_edge_tiles_are_only_what_exists():
    # P = Q = 7 with Tr = Tc = 3: row tiles of 3, 3, 1 outputs need 5, 5, 3 input rows -> 13 rows (and cols)
    # inputs = ceil(M/Tm) N 13 13 = 2 * 4 * 169 = 1352; weights = 3 * 3 row/col tiles x M N K^2 = 9 * 288 = 2592
    # outputs = M P Q = 8 * 49 = 392; compute = 2 * 2 * 49 * 9 = 1764 cycles
    layer = Layer(name="edge", K=8, C=4, P=7, Q=7, R=3, S=3)
    r = zhang15_layer(layer, D, board())
    assert r.terms["traffic_words"] == {"input": 1352, "weight": 2592, "output": 392}
    assert r.terms["compute_cycles"] == 1764


def test_strided_kernel_bram_by_hand():
    # Zhang's conv1 (per group M=48, N=3, 55x55, K=11, S=4) with <64,7> and Tr = Tc = 13, fp32:
    # input bank: (13-1)*4 + 11 = 59 rows and cols -> 3481 words -> ceil(3481/512) = 7 BRAM18 (512 x 36)
    #   7 banks x 2 copies x 7 = 98; weights 121 words (> 64 -> BRAM) -> 448 banks x 2 = 896;
    # outputs 13*13 = 169 words -> 64 banks x 2 = 128; total 1122 BRAM18 = 561 BRAM36; DSP 448 x 5 = 2240
    conv1 = Layer(name="conv1", G=2, K=48, C=3, P=55, Q=55, R=11, S=11, stride=4)
    r = zhang15_layer(conv1, Zhang15Design(64, 7, 13, 13), "vc707")
    assert r.resources.bram18 == 1122 and r.resources.bram36 == 561
    assert r.resources.dsp == 2240
    # two groups run one after the other: 2 x ceil(48/64) ceil(3/7) 55 55 121 = 2 x 366025
    assert r.terms["compute_cycles"] == 2 * 366025


# AlexNet as in Zhang et al.: five conv layers, each two groups of (M, N) per their table
ALEXNET = Network("alexnet_2col_conv", (
    Layer(name="conv1", G=2, K=48, C=3, P=55, Q=55, R=11, S=11, stride=4),
    Layer(name="conv2", G=2, K=128, C=48, P=27, Q=27, R=5, S=5),
    Layer(name="conv3", G=2, K=192, C=256, P=13, Q=13, R=3, S=3),
    Layer(name="conv4", G=2, K=192, C=192, P=13, Q=13, R=3, S=3),
    Layer(name="conv5", G=2, K=128, C=192, P=13, Q=13, R=3, S=3)))
SHAPES = [(48, 3, 55, 11), (128, 48, 27, 5), (192, 256, 13, 3), (192, 192, 13, 3), (128, 192, 13, 3)]


def brute_force_compute(max_macs):
    """Independent enumeration of the computational roof alone: every <Tm, Tn> with Tm Tn <= max_macs;
    ties go to fewer MACs."""
    best = None
    for tm in range(1, max_macs + 1):
        for tn in range(1, max_macs // tm + 1):
            cyc = sum(math.ceil(m / tm) * math.ceil(n / tn) * r * r * k * k for m, n, r, k in SHAPES)
            key = (cyc, tm * tn, tm, tn)
            best = key if best is None or key < best else best
    return best


def test_brute_force_roof_optimum():
    # 2800 DSPs / 5 per fp32 MAC = 560 MACs: <64,8> (every N but conv1's is a multiple of 8)
    assert brute_force_compute(560) == (913261, 512, 64, 8)
    # with 448..511 MACs, <64,7> is the optimum (the paper's design uses 448 MACs = 2240 DSPs)
    assert brute_force_compute(448) == (1002946, 448, 64, 7)
    assert brute_force_compute(511) == (1002946, 448, 64, 7)


def test_cross_layer_search_vc707_fp32():
    vc707 = load_board("vc707")  # 100 MHz, 12.8 GB/s: every layer stays compute bound
    full = search_design(ALEXNET, vc707, model="zhang15", dtype="fp32")
    assert (full.design["Tm"], full.design["Tn"]) == (64, 8)
    assert full.result.cycles == 2 * 913261  # two groups per layer
    assert all(l.bound == "compute" for l in full.result.layers)
    assert full.method == "exhaustive" and full.result.fits
    for dsp in (2240, 2555):  # the DSP count of the paper's 448-MAC engine, and the largest such budget
        capped = search_design(ALEXNET, vc707.with_limits(dsp=dsp), model="zhang15", dtype="fp32")
        assert (capped.design["Tm"], capped.design["Tn"]) == (64, 7)
        assert capped.result.cycles == 2 * 1002946
        assert capped.result.resources.dsp <= dsp


def test_network_over_budget_names_resource_and_numbers():
    with pytest.raises(FPGAError, match=r"DSP 2560 used > 2240 available"):
        zhang15_network(ALEXNET, Zhang15Design(64, 8, 13, 13), load_board("vc707").with_limits(dsp=2240),
                        allow_over_budget=False)
    r = zhang15_network(ALEXNET, Zhang15Design(64, 8, 13, 13), load_board("vc707").with_limits(dsp=2240))
    assert not r.fits and r.violations[0].resource == "DSP"


def test_design_parsing_and_errors():
    assert Zhang15Design.parse("Tm=64, Tn=7,Tr=13,Tc=13") == Zhang15Design(64, 7, 13, 13)
    assert Zhang15Design.parse("Tm=64,Tn=7,Tr=13,Tc=13,dtype=fix16").dtype == "fix16"
    for bad in ("Tm=64,Tn=7", "Tm=64,Tn=x,Tr=1,Tc=1", "Tm=0,Tn=1,Tr=1,Tc=1", "Tm=1,Tn=1,Tr=1,Tc=1,Tq=2", "junk",
                "Tm=1,Tn=1,Tr=1,Tc=1,dtype=fp8"):
        with pytest.raises(FPGAError):
            Zhang15Design.parse(bad)


layers = st.builds(
    lambda g, k, c, p, r, s: Layer(name="h", G=g, K=k, C=c, P=p, Q=p, R=r, S=r, stride=s),
    st.integers(1, 3), st.integers(1, 70), st.integers(1, 70), st.integers(1, 30), st.sampled_from([1, 3, 5]),
    st.integers(1, 3))
designs = st.builds(lambda a, b, c, d, t: Zhang15Design(a, b, c, d, t), st.integers(1, 40), st.integers(1, 40),
                    st.integers(1, 32), st.integers(1, 32), st.sampled_from(["fp32", "fix16"]))


@settings(max_examples=150, deadline=None)
@given(layers, designs, st.sampled_from([0.5, 4.0, 20.0]))
def test_invariants(layer, design, gbs):
    b = board(ddr_gbs=gbs)
    r = zhang15_layer(layer, design, b)
    t = r.terms
    bytes_per_cycle = gbs * 1e3 / 100
    assert r.cycles == max(t["compute_cycles"], math.ceil(r.dram_bytes / bytes_per_cycle))
    assert t["compute_cycles"] >= math.ceil(layer.macs / (design.Tm * design.Tn))
    assert t["traffic_words"]["weight"] >= layer.weight_elems
    assert t["traffic_words"]["output"] == layer.output_elems
    assert t["attainable_gops"] <= t["roof_gops"] * (1 + 1e-12)
    # the batched evaluation used by the search agrees with the per-layer path
    sp = Zhang15Space([layer], b, "latency", design.dtype)
    s = sp.evaluate({k: [getattr(design, k)] for k in ("Tm", "Tn", "Tr", "Tc")})
    assert int(s["cycles"][0]) == r.cycles
    assert int(s["bram18"][0]) == r.resources.bram18 and int(s["lut"][0]) == r.resources.lut
