"""Search spaces: invariants (hypothesis), exact sizes, validation, OFA specialized nets, NAS-Bench-201."""
import csv
import gzip
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import WorkloadError
from models.assets import asset_path, have_asset
from models.netconfig import load_net_config, network_from_net_config, run_config_resolution
from models.spaces import (NasBench201Space, OfaMbv3Space, arch_from_net_config, arch_from_string, arch_to_string,
                           detect_width_mult, get_space, names, nasbench201_from_onehot)
from models.spaces.nasbench201 import EDGES, OPS

NEEDS = "set CODESIGN_ASSETS to the shared data directory"
SPACES = names()
seeds = st.integers(min_value=0, max_value=2**32 - 1)


# ---- invariants -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=40, deadline=None)
@given(seed=seeds, prob=st.floats(0.0, 1.0))
def test_operators_stay_valid_and_encoding_round_trips(name, seed, prob):
    space = get_space(name)
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng), space.sample(rng)
    children = [a, space.mutate(a, rng, prob), space.crossover(a, b, rng)]
    for arch in children:
        assert space.validate(arch) == arch  # canonical and valid
        assert space.decode(space.encode(arch)) == arch
    assert space.mutate(a, rng, 0.0) == a
    enc = space.encode_batch(children)
    assert enc.shape == (3, len(space.encode(a))) and set(np.unique(enc)) <= {0.0, 1.0}


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=10, deadline=None)
@given(seed=seeds)
def test_sampled_architectures_build(name, seed):
    space = get_space(name)
    net = space.to_network(space.sample(np.random.default_rng(seed)))
    assert net.macs > 0 and net.layers[-1].name == "classifier"


@pytest.mark.parametrize("name", ["ofa-mbv3", "ofa-mbv3-w1.0", "ofa-proxyless"])
@settings(max_examples=15, deadline=None)
@given(seed=seeds)
def test_net_config_of_an_arch_builds_the_same_network(name, seed):
    space = get_space(name)
    arch = space.sample(np.random.default_rng(seed))
    assert network_from_net_config(space.to_net_config(arch), arch["r"], name=space.name) == space.to_network(arch)
    assert space.from_net_config(space.to_net_config(arch), arch["r"]) == arch


def test_mutation_changes_genes_at_the_requested_rate():
    space, rng = get_space("ofa-mbv3"), np.random.default_rng(0)
    a = {"ks": [3] * 20, "e": [3] * 20, "d": [4] * 5, "r": 160}
    # every gene resampled w.p. 0.5 lands on a different value w.p. 0.5 * 2/3 = 1/3; the first two
    # slots of each stage are built at any depth, so the canonical filler does not hide changes
    always = [s * 4 + j for s in range(5) for j in (0, 1)]
    changed = np.mean([np.mean(np.array(space.mutate(a, rng, 0.5)["ks"])[always] != 3) for _ in range(400)])
    assert abs(changed - 1 / 3) < 0.03


def test_inactive_slots_do_not_matter():
    space = get_space("ofa-mbv3")
    a = {"ks": [7] * 20, "e": [6] * 20, "d": [2] * 5, "r": 224}
    b = space.validate(a)
    assert b["ks"][2:4] == [3, 3] and b["ks"][:2] == [7, 7]
    assert space.to_network(a) == space.to_network(b)
    assert (space.encode(a) == space.encode(b)).all()


# ---- exact sizes ------------------------------------------------------------------------------
def _stage_configs(depths, per_block_choices):
    """Distinct built configurations of one elastic stage, by enumeration."""
    seen = set()
    for d in depths:
        for genes in itertools.product(per_block_choices, repeat=d):
            seen.add(genes)
    return len(seen)


def test_ofa_mbv3_size_matches_enumeration():
    per_stage = _stage_configs((2, 3, 4), list(itertools.product((3, 5, 7), (3, 4, 6))))
    assert per_stage == 9**2 + 9**3 + 9**4 == 7371
    expected = per_stage**5 * 5  # five stages, five sampled resolutions
    assert expected == ((3 * 3) ** 2 + (3 * 3) ** 3 + (3 * 3) ** 4) ** 5 * 5
    for name in ("ofa-mbv3", "ofa-mbv3-w1.0"):
        assert get_space(name).size() == expected == 108_793_277_462_862_429_255


def test_ofa_proxyless_size_matches_enumeration():
    per_stage = _stage_configs((2, 3, 4), list(itertools.product((3, 5, 7), (3, 4, 6))))
    assert get_space("ofa-proxyless").size() == per_stage**5 * 9 * 5  # + the last block's 9 (k, e) choices


def test_ofa_resnet50_size_matches_enumeration():
    e = (0.2, 0.25, 0.35)
    stages = [_stage_configs([b + x for x in (0, 1, 2)], e) * 3 for b in (2, 2, 4, 2)]  # x 3 widths
    assert stages == [117 * 3, 117 * 3, 1053 * 3, 117 * 3]
    stem = 2 * 3 * 3  # middle stem conv on/off, two stem width indices
    assert get_space("ofa-resnet50").size() == stem * int(np.prod(stages, dtype=object)) * 8


def test_nasbench201_size_is_15625():
    strings = {arch_to_string(ops) for ops in itertools.product(OPS, repeat=6)}
    assert len(strings) == get_space("nasbench201").size() == 15625


# ---- validation -------------------------------------------------------------------------------
BIG = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}


@pytest.mark.parametrize("bad,match", [
    ({**BIG, "ks": [7] * 19}, "20 entries"),
    ({**BIG, "e": [6] * 21}, "20 entries"),
    ({**BIG, "d": [4] * 4}, "5 entries"),
    ({**BIG, "ks": [7] * 19 + [4]}, "not one of"),
    ({**BIG, "e": [5] * 20}, "not one of"),
    ({**BIG, "d": [1] * 5}, "not one of"),
    ({**BIG, "r": 300}, "integer in"),
    ({**BIG, "r": 100}, "integer in"),
    ({**BIG, "r": "224"}, "integer in"),
    ({**BIG, "ks": ["7"] * 20}, "not a number"),
    ({**BIG, "ks": [True] * 20}, "not a number"),
    ({k: v for k, v in BIG.items() if k != "r"}, "missing"),
    ({**BIG, "w": 1}, "unknown key"),
    ([1, 2, 3], "JSON object"),
])
def test_ofa_mbv3_rejects_bad_archs(bad, match):
    with pytest.raises(WorkloadError, match=match):
        get_space("ofa-mbv3").validate(bad)


def test_batch_encoding_rejects_what_validate_rejects():
    space = get_space("ofa-mbv3")
    for bad in ({**BIG, "ks": [6.5] * 20}, {**BIG, "r": 224.5}, {**BIG, "d": [4] * 6}, {**BIG, "x": 1}):
        with pytest.raises(WorkloadError):
            space.encode_batch([BIG, bad])
    assert (space.encode_batch([{**BIG, "ks": [7.0] * 20, "r": 224.0}]) == space.encode(BIG)).all()


def test_other_spaces_reject_bad_archs():
    rn = get_space("ofa-resnet50")
    good = {"d": [2, 1, 1, 1, 1], "e": [0.25] * 18, "w": [2] * 6, "r": 224}
    assert rn.validate(good)["e"][:3] == [0.25, 0.25, 0.25]
    for bad in ({**good, "d": [1, 1, 1, 1, 1]}, {**good, "e": [0.3] * 18}, {**good, "w": [3] * 6},
                {**good, "r": 208}, {**good, "e": [0.25] * 17}):
        with pytest.raises(WorkloadError):
            rn.validate(bad)
    with pytest.raises(WorkloadError, match="21 entries"):
        get_space("ofa-proxyless").validate(BIG)
    nb = get_space("nasbench201")
    for bad in ({"ops": ["none"] * 5}, {"ops": ["conv"] * 6}, "|none~0|+|none~0|none~1|", "|none~1|+|x|+|y|", 42):
        with pytest.raises(WorkloadError):
            nb.validate(bad)
    with pytest.raises(WorkloadError, match="probability"):
        nb.mutate(nb.sample(np.random.default_rng(0)), np.random.default_rng(0), 1.5)
    with pytest.raises(WorkloadError, match="unknown search space"):
        get_space("darts")


def test_decode_rejects_vectors_that_are_not_encodings():
    space = get_space("ofa-mbv3")
    x = space.encode(BIG)
    with pytest.raises(WorkloadError):
        space.decode(x[:-1])
    y = x.copy()
    y[0] = 1  # two kernel sizes in slot 0
    with pytest.raises(WorkloadError):
        space.decode(y)
    z = x.copy()
    z[3:6] = 0  # slot 1 empty while slot 2 is built
    z[63:66] = 0
    with pytest.raises(WorkloadError):
        space.decode(z)


# ---- OFA specialized networks -----------------------------------------------------------------
@pytest.mark.skipif(not have_asset("ofa/specialized"), reason=NEEDS)
@pytest.mark.parametrize("folder,width,depths,resolution", [
    # widths: stem 16 = 16 x 1.0 vs 24 = make_divisible(16 x 1.2, 8); depths counted from the
    # blocks between channel changes in each file; resolution from its run.config
    ("LG-G8_lat-11ms_top1-73.0_finetune-25", 1.0, [2, 3, 2, 3, 3], 156),
    ("flops-595M_top1-80.0_finetune-75", 1.2, [3, 4, 4, 4, 4], 236),
    ("note10_lat-30ms_top1-78.4_finetune-75", 1.2, [2, 3, 3, 3, 4], 224),
])
def test_specialized_net_config_equals_space_network(folder, width, depths, resolution):
    path = asset_path(f"ofa/specialized/{folder}")
    cfg = load_net_config(path)
    r = run_config_resolution(path)
    assert r == resolution
    assert detect_width_mult(cfg) == width
    arch = arch_from_net_config(cfg, r)
    assert arch["d"] == depths and arch["r"] == r
    space = OfaMbv3Space(width)
    mine, theirs = space.to_network(arch), network_from_net_config(cfg, r)
    assert [(l.name, l.shape_key) for l in mine] == [(l.name, l.shape_key) for l in theirs]
    assert [(a.name, a.in_elems, a.out_elems) for a in mine.aux] == \
        [(a.name, a.in_elems, a.out_elems) for a in theirs.aux]
    # the net.config built from the arch carries the same block fields as the authors' file
    fields = ("in_channels", "out_channels", "kernel_size", "stride", "expand_ratio", "mid_channels", "act_func",
              "use_se")
    gen = space.to_net_config(arch)
    for b_gen, b_file in zip(gen["blocks"], cfg["blocks"], strict=True):
        g, f = b_gen["mobile_inverted_conv"], b_file["mobile_inverted_conv"]
        assert {k: g[k] for k in fields} == {k: f[k] for k in fields}
        assert (b_gen["shortcut"] is None) == (b_file["shortcut"] is None)
    for key in ("first_conv", "final_expand_layer", "feature_mix_layer"):
        assert {k: gen[key][k] for k in ("in_channels", "out_channels", "act_func", "use_bn")} == \
            {k: cfg[key][k] for k in ("in_channels", "out_channels", "act_func", "use_bn")}


@pytest.mark.skipif(not have_asset("ofa/specialized"), reason=NEEDS)
def test_wrong_width_net_config_is_rejected():
    cfg = load_net_config(asset_path("ofa/specialized/note10_lat-30ms_top1-78.4_finetune-75"))
    with pytest.raises(WorkloadError, match="differ"):
        OfaMbv3Space(1.0).from_net_config(cfg, 224)


# ---- NAS-Bench-201 ----------------------------------------------------------------------------
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_arch_string_round_trip():
    a = arch_from_string(EXAMPLE)
    assert a["ops"] == ["nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3",
                        "skip_connect"]
    assert arch_to_string(a["ops"]) == EXAMPLE
    assert get_space("nasbench201").validate(EXAMPLE) == a


def test_nasbench201_macs_by_hand():
    """All-3x3-conv cell, CIFAR-100, counted by hand.

    stem 3*16*9*32*32 = 442,368; each stage: 5 cells x 6 convs, each C*C*9*H*W = 2,359,296
    (16ch@32x32, 32@16x16, 64@8x8) -> 3 x 70,778,880; reductions: 3x3/2 conv (1,179,648),
    3x3 conv (2,359,296), 1x1 shortcut (131,072) twice; classifier 64*100 = 6,400.
    """
    conv = arch_to_string(["nor_conv_3x3"] * 6)
    net = NasBench201Space(num_classes=100).to_network(conv)
    assert net.macs == 442_368 + 3 * 70_778_880 + 2 * (1_179_648 + 2_359_296 + 131_072) + 6_400 == 220_125_440
    # without convolutions in the cells only the skeleton is left
    skip = arch_to_string(["skip_connect", "none", "avg_pool_3x3", "none", "none", "skip_connect"])
    assert NasBench201Space(num_classes=10).to_network(skip).macs == 442_368 + 2 * 3_670_016 + 640
    by = {l.name: l for l in net.layers}
    assert by["cells.5.conv_a"].dims == dict(G=1, N=1, K=32, C=16, P=16, Q=16, R=3, S=3)
    assert by["cells.0.edges.3<-2"].dims == dict(G=1, N=1, K=16, C=16, P=32, Q=32, R=3, S=3)
    # node sums: node 1 has one input, node 2 two, node 3 three -> 0 + 1 + 2 adds per cell
    assert sum(1 for a in net.aux if a.name.startswith("cells.0.node")) == 3


def test_nasbench201_dead_edges_pruned_on_request():
    # node 1 feeds nothing that reaches the output: its conv is dead
    dead = arch_to_string(["nor_conv_3x3", "nor_conv_1x1", "none", "nor_conv_1x1", "none", "none"])
    full = NasBench201Space().to_network(dead)
    pruned = NasBench201Space(prune_dead=True).to_network(dead)
    # node 1 and node 2 feed nothing that reaches node 3: edge 1<-0 (3x3) and 2<-0 (1x1) are dead;
    # C*C*H*W = 262,144 in every stage (16^2*32^2 = 32^2*16^2 = 64^2*8^2), 15 cells
    assert full.macs - pruned.macs == 15 * (9 * 262_144 + 262_144)
    assert not any("edges.1<-0" in l.name for l in pruned.layers)
    assert not any("edges.2<-0" in l.name for l in pruned.layers)


@pytest.mark.parametrize("bits,match", [("1" * 31, "exactly one"), ("0" * 30 + "1", "exactly one"),
                                        ("10000" * 6 + "0", "constant"), ("10000" * 5, "bits"),
                                        ("1000a" * 6 + "1", "only 0 and 1")])
def test_onehot_errors(bits, match):
    with pytest.raises(WorkloadError, match=match):
        nasbench201_from_onehot(bits)


def test_onehot_layout():
    """Groups of five in OPS order, groups in arch-string edge order, constant last."""
    bits = "".join("".join("1" if k == OPS.index(op) else "0" for k in range(5))
                   for op in arch_from_string(EXAMPLE)["ops"]) + "1"
    assert nasbench201_from_onehot(bits) == EXAMPLE
    assert nasbench201_from_onehot([int(c) for c in bits[:30]]) == EXAMPLE


def _oneproxy():
    with open(asset_path("nasbench201/oneproxy_latency.csv")) as f:
        return list(csv.DictReader(f))


@pytest.mark.skipif(not (have_asset("nasbench201/oneproxy_latency.csv")
                         and have_asset("nasbench201/hw360_cifar100_pi5.csv.gz")), reason=NEEDS)
def test_oneproxy_encodings_decode_to_distinct_benchmark_cells():
    rows = _oneproxy()
    with gzip.open(asset_path("nasbench201/hw360_cifar100_pi5.csv.gz"), "rt") as f:
        bench = {r["arch_str"] for r in csv.DictReader(f)}
    assert len(bench) == 15625  # the benchmark file lists every cell once
    decoded = [nasbench201_from_onehot(r["encoding"]) for r in rows]
    assert len(rows) == 1999 and len(set(decoded)) == 1999
    assert set(decoded) <= bench


def _fit_r2(F, y):
    w = np.linalg.lstsq(F, y, rcond=None)[0]
    return 1 - ((y - F @ w) ** 2).sum() / ((y - y.mean()) ** 2).sum(), w


@pytest.mark.skipif(not have_asset("nasbench201/oneproxy_latency.csv"), reason=NEEDS)
def test_inferred_operator_order_fits_the_analytical_fpga_model():
    """FPGA latency is linear in the operator one-hots: none and skip cost 0, 3x3 conv the most."""
    rows = _oneproxy()
    X = np.array([[int(c) for c in r["encoding"]] for r in rows], float)
    r2, w = _fit_r2(X, np.array([float(r["rice_fpga"]) for r in rows]))
    assert r2 > 0.999
    cost = w[:30].reshape(6, 5)
    cost = cost - cost[:, :1]  # relative to 'none'
    assert np.allclose(cost, cost[0], atol=1e-6)  # the same for every edge
    assert abs(cost[0, OPS.index("skip_connect")]) < 1e-6
    assert cost[0].argmax() == OPS.index("nor_conv_3x3")


@pytest.mark.skipif(not have_asset("nasbench201/oneproxy_latency.csv"), reason=NEEDS)
def test_inferred_edge_order_explains_measured_latency_best():
    """With 'none' edges removing the work they disconnect, the arch-string edge order (and only
    its mirror image, which the model cannot tell apart) fits the Cortex-A76 latencies best."""
    rows = _oneproxy()
    X = np.array([[int(c) for c in r["encoding"]] for r in rows])
    op = X[:, :30].reshape(-1, 6, 5).argmax(2)
    y = np.array([float(r["true_a76"]) for r in rows])

    def r2_for(order):  # order[g] = index into EDGES of bit group g
        e = {EDGES[order[g]]: op[:, g] for g in range(6)}
        on = {k: v != 0 for k, v in e.items()}
        fed = {0: True}
        for j in (1, 2, 3):
            fed[j] = False
            for i in range(j):
                fed[j] = fed[j] | (on[(j, i)] & fed[i])
        used = {3: True}
        for i in (2, 1, 0):
            used[i] = False
            for j in range(i + 1, 4):
                used[i] = used[i] | (on[(j, i)] & used[j])
        # one-hot design matrix held as the column index of each row's 1s (6 groups + constant);
        # least squares by the normal equations built with bincount (no BLAS)
        cols = np.empty((len(y), 7), np.int64)
        for g in range(6):
            j, i = EDGES[order[g]]
            cols[:, g] = g * 5 + np.where(fed[i] & used[j], op[:, g], 0)
        cols[:, 6] = 30
        gram = np.bincount((cols[:, :, None] * 31 + cols[:, None, :]).ravel(), minlength=31 * 31).reshape(31, 31)
        rhs = np.bincount(cols.ravel(), weights=np.repeat(y, 7), minlength=31)
        w = np.linalg.solve(gram + 1e-9 * np.eye(31), rhs)  # tiny ridge: the one-hot groups are collinear
        return 1 - ((y - w[cols].sum(1)) ** 2).sum() / ((y - y.mean()) ** 2).sum()

    ident = tuple(range(6))
    mirror = tuple(EDGES.index((3 - i, 3 - j)) for j, i in EDGES)
    best = r2_for(ident)
    assert abs(best - r2_for(mirror)) < 1e-9 and best > 0.98
    others = [r2_for(p) for p in itertools.permutations(range(6)) if p not in (ident, mirror)]
    assert best > max(others) + 0.02
