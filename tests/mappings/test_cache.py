"""The per-shape mapping cache: hits on repeated shapes, keys, disk persistence."""
import json

import pytest

import mappings.evaluate as ev
from accelerators import load_accelerator
from mappings.cache import ENV_VAR, MappingCache, cache_key, default_cache, disk_dir_from_env
from mappings.optimizers import optimize, settings
from models.layer import Layer
from models.network import Network


@pytest.fixture
def counted(monkeypatch):
    calls = []

    def counting(layer, acc, **kw):
        res = optimize(layer, acc, **kw)
        calls.append((layer.shape_key, res.evaluated))
        return res

    monkeypatch.setattr(ev, "optimize", counting)
    return calls


def net():
    a = Layer(name="a", K=16, C=8, P=4, Q=4, R=3, S=3)
    b = Layer(name="b", K=8, C=16, P=4, Q=4)
    return Network("toy", [a, b, a.renamed("a2"), a.renamed("a3"), b.renamed("b2")])


def test_repeated_shapes_are_mapped_once(counted):
    cache = MappingCache()
    first = ev.evaluate_network(net(), "shidiannao", cache=cache)
    assert len(counted) == 2  # two distinct shapes in five layers
    assert first.cache == {"hits": 0, "disk_hits": 0, "misses": 2, "directory": None}
    evaluated = sum(e for _, e in counted)
    again = ev.evaluate_network(net(), "shidiannao", cache=cache)
    assert len(counted) == 2  # nothing mapped again
    assert again.cache["hits"] == 2 and again.cache["misses"] == 0
    assert all(l.cached for l in again.layers)
    assert again.total.edp == first.total.edp
    assert sum(e for _, e in counted) == evaluated
    # without a shared cache repeated shapes inside one network are still mapped once
    ev.evaluate_network(net(), "shidiannao", cache=False)
    assert len(counted) == 4


def test_key_separates_what_changes_the_result():
    acc, other = load_accelerator("eyeriss"), load_accelerator("nvdla-256")
    l = Layer(name="x", K=8, C=8, P=4, Q=4)
    base = cache_key(l, acc, "edp", settings("auto"))
    assert cache_key(l.renamed("y"), acc, "edp", settings("auto")) == base  # the name does not matter
    assert cache_key(l, acc.with_name("renamed"), "edp", settings("auto")) == base
    for k in (cache_key(Layer(K=8, C=8, P=4, Q=4, stride=2), acc, "edp", settings("auto")),
              cache_key(l, other, "edp", settings("auto")),
              cache_key(l, acc, "energy", settings("auto")),
              cache_key(l, acc, "edp", settings("random")),
              cache_key(l, acc, "edp", settings("auto", budget=10)),
              cache_key(l, acc, "edp", dict(settings("auto"), seed=1))):
        assert k != base


def test_disk_cache_survives_a_new_process_and_recomputes_bad_entries(tmp_path, counted):
    ev.evaluate_network(net(), "eyeriss", cache=MappingCache(tmp_path))
    files = sorted(tmp_path.rglob("*.json"))
    assert len(files) == 2 and len(counted) == 2
    fresh = MappingCache(tmp_path)  # as a new process would see it
    again = ev.evaluate_network(net(), "eyeriss", cache=fresh)
    assert len(counted) == 2 and fresh.disk_hits == 2
    assert again.layers[0].mapping == ev.evaluate_network(net(), "eyeriss", cache=False).layers[0].mapping
    # a corrupted entry and an entry that no longer is a valid mapping are both misses
    files[0].write_text("{not json")
    d = json.loads(files[1].read_text())
    d["mapping"]["temporal"]["rf"] = {"K": 4096}
    files[1].write_text(json.dumps(d))
    ev.evaluate_network(net(), "eyeriss", cache=MappingCache(tmp_path))
    assert len(counted) == 2 + 2 + 2  # the cache=False run above (two shapes), then both entries again


def test_environment_switches_the_default_disk_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert disk_dir_from_env() is None and default_cache().directory is None
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "m"))
    assert default_cache().directory == tmp_path / "m"
    monkeypatch.setenv(ENV_VAR, "1")
    assert disk_dir_from_env().parts[-3:] == (".cache", "codesign", "mappings")
    monkeypatch.setenv(ENV_VAR, "off")
    assert disk_dir_from_env() is None
