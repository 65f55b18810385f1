"""Schedule search: the DP's choice against every cover of small networks (one with a pool
between convolutions that stacks may cross)."""
import itertools

import pytest

from codesign.search.schedule import _options, candidate_tiles, search_schedule
from mappings.cache import MappingCache
from mappings.schedule import StackMapper, evaluate_schedule
from models.errors import WorkloadError
from models.zoo._builder import NetBuilder


@pytest.fixture(scope="module")
def block():
    b = NetBuilder("blk", 8, 16)
    entry = b.state()
    b.conv("pw1", 24, 1).dwconv("dw", 3).conv("pw2", 8, 1).add("add", entry)
    return b.build(16)


@pytest.fixture(scope="module")
def mapper(block):
    return StackMapper(block, "eyeriss", optimizer="heuristic", cache=MappingCache())


@pytest.fixture(scope="module")
def pooled():
    """conv - pool - conv - conv: stacks may cross the pool."""
    b = NetBuilder("cpcc", 4, 16)
    b.conv("c1", 8, 3).pool("pool", 3, 2, padding=1).conv("c2", 8, 3).conv("c3", 8, 1)
    return b.build(16)


@pytest.fixture(scope="module")
def pooled_mapper(pooled):
    return StackMapper(pooled, "eyeriss", optimizer="heuristic", cache=MappingCache())


def test_candidate_tiles():
    assert candidate_tiles(8, 8) == [None, (1, 8), (1, 1), (2, 8), (2, 2), (4, 8), (4, 4)]
    assert candidate_tiles(1, 1) == [None]


def _covers(n):
    """Every way to cut 0..n-1 into consecutive stacks."""
    for cuts in itertools.product((False, True), repeat=n - 1):
        out, start = [], 0
        for i, c in enumerate(cuts, start=1):
            if c:
                out.append((start, i - 1))
                start = i
        out.append((start, n - 1))
        yield out


@pytest.fixture(scope="module")
def fire_mapper(fire_net):
    return StackMapper(fire_net, "eyeriss", optimizer="heuristic", cache=MappingCache())


@pytest.mark.parametrize("net", ["block", "pooled", "fire_net"])
@pytest.mark.parametrize("objective", ["energy", "latency", "edp"])
def test_dp_finds_the_exhaustive_optimum(net, objective, request):
    block = request.getfixturevalue(net)
    mapper = request.getfixturevalue({"block": "mapper", "pooled": "pooled_mapper", "fire_net": "fire_mapper"}[net])
    opts = _options(mapper, 4, ("recompute", "cache"))
    best = None
    for cover in _covers(len(block.layers)):
        if any(c not in opts for c in cover):
            continue
        for choice in itertools.product(*(opts[c] for c in cover)):
            e = sum(o.energy for o in choice)
            d = sum(o.cycles for o in choice)
            v = {"energy": e, "latency": d, "edp": e * d}[objective]
            best = v if best is None else min(best, v)
    got = search_schedule(block, mapper.acc, objective=objective, max_layers=4, mapper=mapper)
    v = {"energy": got.energy_pj, "latency": got.cycles, "edp": got.edp}[objective]
    assert v == pytest.approx(best, rel=1e-12)


def test_stacks_across_the_fire_module_are_candidates(fire_mapper):
    opts = _options(fire_mapper, 4, ("recompute",))
    # a stack may start at s (holding both branches) or at e1 (a chain of one); none from e1 or
    # e3 on reaches past a layer reading something before it
    assert sorted(k for k in opts if k[1] > k[0]) == [(0, 1), (0, 2), (0, 3)]


def test_stacks_across_the_pool_are_candidates(pooled_mapper):
    opts = _options(pooled_mapper, 3, ("recompute", "cache"))
    assert {(0, 1), (0, 2)} <= set(opts)
    # tiled, with either overlap policy
    assert {o.stack.overlap for o in opts[(0, 2)] if o.stack.tile is not None} == {"recompute", "cache"}


def test_the_searched_schedule_fuses_the_pool(pooled, pooled_mapper):
    lbl = evaluate_schedule(pooled, pooled_mapper.acc, mapper=pooled_mapper)
    got = search_schedule(pooled, pooled_mapper.acc, max_layers=3, mapper=pooled_mapper)
    assert got.edp < lbl.edp
    assert got.stacks[0].stack.first == 0 and got.stacks[0].stack.last >= 1  # c1 and c2 share a stack
    assert [p["name"] for p in got.stacks[0].pools] == ["pool"]
    assert got.dram_words["activations"] < lbl.dram_words["activations"]


def test_search_is_never_worse_than_layer_by_layer(block, mapper):
    lbl = evaluate_schedule(block, mapper.acc, mapper=mapper)
    got = search_schedule(block, mapper.acc, max_layers=3, mapper=mapper)
    assert got.edp <= lbl.edp
    assert got.dram_words["activations"] < lbl.dram_words["activations"]


def test_bad_search_settings(block, mapper):
    with pytest.raises(WorkloadError, match="unknown schedule objective"):
        search_schedule(block, mapper.acc, objective="area", mapper=mapper)
    with pytest.raises(WorkloadError, match="max layers"):
        search_schedule(block, mapper.acc, max_layers=0, mapper=mapper)


def _exhaustive(block, opts, bound=None):
    """(least peak over every cover, least EDP over the covers whose peak is at most ``bound``)."""
    least, best = None, None
    for cover in _covers(len(block.layers)):
        if any(c not in opts for c in cover):
            continue
        for choice in itertools.product(*(opts[c] for c in cover)):
            peak = max(o.peak for o in choice)
            least = peak if least is None else min(least, peak)
            if bound is None or peak <= bound:
                e, d = sum(o.energy for o in choice), sum(o.cycles for o in choice)
                best = e * d if best is None else min(best, e * d)
    return least, best


def test_memory_objective_finds_the_least_peak(block, mapper):
    opts = _options(mapper, 3, ("recompute", "cache"))
    least, _ = _exhaustive(block, opts)
    got = search_schedule(block, mapper.acc, objective="memory", max_layers=3, mapper=mapper)
    assert got.peak_glb_bytes == least
    # and the least EDP among the schedules with that peak (the lambda scan's hull)
    _, best_at_least = _exhaustive(block, opts, least)
    assert got.edp >= best_at_least * (1 - 1e-12)
    unbounded = search_schedule(block, mapper.acc, max_layers=3, mapper=mapper)
    assert least < unbounded.peak_glb_bytes  # the EDP-best schedule buys its EDP with buffer


def test_peak_bound_constrains_the_edp_search(block, mapper):
    opts = _options(mapper, 3, ("recompute", "cache"))
    least, _ = _exhaustive(block, opts)
    free = search_schedule(block, mapper.acc, max_layers=3, mapper=mapper)
    bound = (least + free.peak_glb_bytes) / 2
    got = search_schedule(block, mapper.acc, max_layers=3, mapper=mapper, max_peak_bytes=bound)
    assert got.peak_glb_bytes <= bound and got.edp >= free.edp
    _, best = _exhaustive(block, opts, bound)
    assert got.edp == pytest.approx(best, rel=1e-12)
    with pytest.raises(WorkloadError, match=r"least peak any candidate schedule reaches is"):
        search_schedule(block, mapper.acc, max_layers=3, mapper=mapper, max_peak_bytes=least * 0.99)
    with pytest.raises(WorkloadError, match="positive number of bytes"):
        search_schedule(block, mapper.acc, mapper=mapper, max_peak_bytes=0)
