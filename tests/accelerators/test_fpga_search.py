"""FPGA design search: the design found fits every limit, beats or equals every preset that fits,
matches exhaustive enumeration where that is possible, and is reproducible."""
import pytest

import accelerators.fpga.search as fsearch
from accelerators.fpga import (FPGAError, HotNASDesign, check_resources, hotnas_network, load_board,
                               load_preset, preset_names, zhang15_network, Zhang15Design)
from accelerators.fpga.search import search_design
from models.layer import Layer
from models.network import Network
from models.zoo import get_network

ZCU102 = load_board("zcu102")


@pytest.fixture(scope="module")
def mbv2():
    return get_network("mobilenet_v2")


@pytest.fixture(scope="module")
def mbv2_latency(mbv2):
    return search_design(mbv2, ZCU102, model="hotnas", objective="latency", seed=0)


def _fits_everything(design: dict, board, net):
    d = HotNASDesign(**design)
    res = hotnas_network(net, d, board).resources
    assert res.dsp == d.Tm * d.Tn + d.Tmd <= board.dsp
    assert res.bram18 <= 2 * board.bram36
    assert res.lut <= board.lut
    assert 16 * (d.Ip + d.Op + d.Wp) <= board.mem_port_bits
    assert check_resources(d, board, net) == []


def test_search_fits_zcu102_and_presets_do_not(mbv2, mbv2_latency):
    found = mbv2_latency
    _fits_everything(found.design, ZCU102, mbv2)
    assert found.result.fits and found.result.violations == ()
    # every preset breaks the BRAM limit on the real board, so none of them is a valid competitor here
    assert all(not p["fits"] for p in found.presets)
    assert {p["preset"] for p in found.presets} == set(preset_names())


def test_search_beats_every_preset_that_fits(mbv2):
    # a board with enough BRAM for the presets' 32x32 tiles: eight presets fit, zcu102-3 still breaks the ports
    roomy = ZCU102.with_limits(bram36=2000)
    found = search_design(mbv2, roomy, model="hotnas", seed=0)
    _fits_everything(found.design, roomy, mbv2)
    fitting = 0
    for name in preset_names():
        r = hotnas_network(mbv2, load_preset(name), roomy)
        if r.fits:
            fitting += 1
            assert found.result.cycles <= r.cycles, name
    assert fitting == 8


def test_same_seed_same_result_and_layer_specific_bound():
    net = Network("three", (Layer(name="a", K=32, C=16, P=28, Q=28, R=3, S=3),
                            Layer(name="b", G=32, K=1, C=1, P=14, Q=14, R=3, S=3, stride=2),
                            Layer(name="c", K=24, C=32, P=14, Q=14)))
    pynq = load_board("pynq-z2")
    a = search_design(net, pynq, seed=3, budget=200)
    b = search_design(net, pynq, seed=3, budget=200)
    assert a.design == b.design and a.result.cycles == b.result.cycles and a.method == "nevergrad"
    _fits_everything(a.design, pynq, net)
    ls = search_design(net, pynq, seed=3, budget=200, mode="layer-specific")
    assert ls.result.cycles <= a.result.cycles      # one design per layer can only do better
    for layer, l_ls, l_x in zip(net.layers, ls.result.layers, a.result.layers):
        assert l_ls.cycles <= l_x.cycles
        assert check_resources(HotNASDesign(**l_ls.design), pynq, [layer]) == []


def test_nevergrad_finds_the_exhaustive_optimum_on_a_small_grid(monkeypatch):
    layer = Layer(name="x", K=4, C=4, P=4, Q=4, R=3, S=3)   # input 6 x 6
    tiny = ZCU102.with_limits(dsp=12, mem_port_bits=96)    # 6 port words: 10 (Ip, Wp) pairs
    net = Network("one", (layer,))
    exact = search_design(net, tiny, seed=0)
    assert exact.method == "exhaustive"
    # an independent brute force over every design within the DSPs (tiles up to the input size)
    best = None
    for tm in range(1, 5):
        for tn in range(1, 5):
            if tm * tn > 12:
                continue
            for tr in range(1, 7):
                for tc in range(1, 7):
                    for ip in range(1, 5):
                        for wp in range(1, 6 - ip):
                            d = HotNASDesign(tm, tn, tr, tc, 0, ip, 6 - ip - wp, wp)
                            r = hotnas_network(net, d, tiny)
                            if r.fits and (best is None or r.cycles < best):
                                best = r.cycles
    assert exact.result.cycles == best
    monkeypatch.setattr(fsearch, "EXHAUSTIVE_MAX", 0)
    heuristic = search_design(net, tiny, seed=1, budget=100)
    assert heuristic.method == "nevergrad" and heuristic.result.cycles == best


def test_edp_objective_trades_latency_for_energy(mbv2, mbv2_latency):
    lat = mbv2_latency
    edp = search_design(mbv2, ZCU102, objective="edp")
    assert edp.result.energy["edp_j_s"] <= lat.result.energy["edp_j_s"]
    assert lat.result.cycles <= edp.result.cycles
    _fits_everything(edp.design, ZCU102, mbv2)


def test_zhang15_search_respects_limits():
    vgg_head = Network("vgg_head", tuple(get_network("vgg16").layers[:4]))
    zc706 = load_board("zc706")
    found = search_design(vgg_head, zc706, model="zhang15", dtype="fix16")
    d = Zhang15Design(**found.design)
    r = zhang15_network(vgg_head, d, zc706)
    assert r.fits and r.resources.dsp == d.Tm * d.Tn <= 900 and r.resources.bram18 <= 2 * 545
    assert r.cycles == found.result.cycles


def test_bad_arguments():
    net = Network("n", (Layer(name="a", K=4, C=4, P=4, Q=4),))
    for kw in ({"model": "systolic"}, {"objective": "energy"}, {"mode": "both"}, {"dtype": "int8"},
               {"budget": 0}):
        with pytest.raises(FPGAError):
            search_design(net, "zcu102", **kw)
    with pytest.raises(FPGAError, match="no zhang15 design fits"):
        search_design(net, ZCU102.with_limits(bram36=1, lut=1), model="zhang15")
