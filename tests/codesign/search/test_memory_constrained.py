"""Memory-constrained sub-network search: peak SRAM and Flash as hard limits inside the evolution,
the sub-network search alone (``--objective accuracy``), the board presets on the command line,
and the errors that say how close the best came. Sizes are counted by hand (int8: one byte per
element)."""
import json

import numpy as np
import pytest

from accelerators.memory import best_patch_stage, memory_profile, peak_memory
from codesign.cli import main
from codesign.search.outer_loop import SearchConfig, memory_limits
from codesign.search.subnet_evolution import EvolutionConfig, InfeasibleError, Limit, evolve
from models import Layer, Network
from models.assets import have_asset

needs_predictor = pytest.mark.skipif(not have_asset("ofa/acc_predictor.pth"),
                                     reason="needs the OFA accuracy predictor: set CODESIGN_ASSETS")

KB = 1024


def toy_net(arch) -> Network:
    """One 3x3 (or kxk) convolution, 16 input channels on a 16x16 map, ``w`` output channels."""
    return Network("toy", [Layer.conv("c", 16, arch["w"], 16, arch.get("k", 3))])


class ChoiceSpace:
    """The architectures of a fixed list, sampled uniformly."""

    def __init__(self, archs):
        self.archs = archs

    def sample(self, rng):
        return dict(self.archs[int(rng.integers(len(self.archs)))])

    def mutate(self, arch, rng, prob):
        return self.sample(rng) if rng.random() < prob else dict(arch)

    def crossover(self, a, b, rng):
        return dict(a if rng.random() < 0.5 else b)


class WidthAccuracy:
    def predict(self, archs):
        return np.array([a["w"] / 64 for a in archs])


def measure(arch) -> dict:
    pm = peak_memory(toy_net(arch))
    return {"peak_sram_bytes": pm.peak_sram_bytes, "flash_bytes": pm.flash_bytes}


def sram(kb):
    return Limit("peak_sram_bytes", kb * KB, "peak SRAM", "kB", KB)


def flash(kb):
    return Limit("flash_bytes", kb * KB, "Flash", "kB", KB)


def search(space, limits, min_accuracy=0.0, **kw):
    cfg = EvolutionConfig(population=4, generations=2, seed=0, select="accuracy", max_tries=50, **kw)
    return evolve(space, WidthAccuracy(), lambda a: measure(a)["peak_sram_bytes"], min_accuracy, cfg,
                  measure=measure, limits=limits)


def test_hand_counted_peaks():
    # input 16x16x16 (padding not stored) + output 16x16xw, both live while the layer runs
    assert measure({"w": 16}) == {"peak_sram_bytes": 16 * 16 * (16 + 16), "flash_bytes": 16 * 16 * 9}  # 8 kB
    assert measure({"w": 32}) == {"peak_sram_bytes": 16 * 16 * (16 + 32), "flash_bytes": 16 * 32 * 9}  # 12 kB
    assert 16 * 16 * (16 + 32) == 12 * KB and 16 * 32 * 9 == 4.5 * KB


def test_a_network_is_accepted_at_its_peak_and_rejected_just_below():
    space = ChoiceSpace([{"w": 16}, {"w": 32}])
    assert search(space, [sram(12)]).best.arch == {"w": 32}        # 12 kB fits 12 kB: the more accurate
    res = search(space, [sram(12 - 1 / KB)])                          # one byte less: only w=16 fits
    assert res.best.arch == {"w": 16}
    assert all(c.measures["peak_sram_bytes"] <= 12 * KB - 1 for c in res.candidates)
    assert search(space, [flash(4.5)]).best.arch == {"w": 32}
    assert search(space, [flash(4.49)]).best.arch == {"w": 16}
    assert search(space, [sram(8)]).best.arch == {"w": 16}
    with pytest.raises(InfeasibleError) as e:
        search(space, [sram(7.99)])
    # 50 samples, then 400 mutations of the closest (repair_patience) without getting closer
    assert str(e.value) == ("no sub-network fits (50 sampled and 400 mutated towards the limits): smallest peak SRAM "
                            "found: 8 kB > 7.99 kB")
    assert e.value.closest == {"peak_sram_bytes": 8 * KB}


def test_errors_say_how_close_the_best_came():
    space = ChoiceSpace([{"w": 16, "k": 5}, {"w": 32, "k": 1}])  # 8 kB / 6.25 kB and 12 kB / 0.5 kB
    with pytest.raises(InfeasibleError) as e:
        search(space, [sram(8), flash(1)])
    assert str(e.value) == ("no sub-network meets all bounds at once (50 sampled and 400 mutated towards the limits): "
                            "smallest peak SRAM found: 8 kB (bound 8 kB); smallest Flash found: 0.5 kB (bound 1 kB)")
    # the accuracy constraint filters first: only w=32 (0.5) reaches 0.4, and it needs 12 kB
    with pytest.raises(InfeasibleError, match=r"\(\d+ of 50 sampled and 400 mutated towards the limits reach accuracy "
                                              r"0.4\): smallest peak SRAM found: 12 kB > 10 kB$"):
        search(space, [sram(10)], min_accuracy=0.4)
    with pytest.raises(InfeasibleError, match=r"no sub-network reaches accuracy 0.9 in 50 samples "
                                              r"\(the best: 0.5000\)"):
        search(space, [sram(100)], min_accuracy=0.9)


def test_limits_of_a_config_are_in_bytes():
    cfg = SearchConfig(workloads=[], envelope=None, space="ofa-mbv3", objective="accuracy", max_sram_kb=320,
                       max_flash_kb=1024)
    assert [(l.key, l.bound) for l in memory_limits(cfg)] == [("peak_sram_bytes", 320 * KB), ("flash_bytes", KB * KB)]
    assert cfg.to_dict()["max_sram_kb"] == 320 and "budget" not in cfg.to_dict() and "envelope" not in cfg.to_dict()
    assert SearchConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
    # a co-search config without the new options is saved as before
    assert not {"max_sram_kb", "mcu", "sram_schedule", "accuracy"} & set(SearchConfig(workloads=["w"]).to_dict())


def test_peak_memory_is_the_best_patch_stage():
    from models.zoo import get_network

    net = get_network("mobilenet_v2", resolution=96)
    k, prof = best_patch_stage(net, 4)
    pm = peak_memory(net, "patch")
    assert (pm.peak_sram_bytes, pm.patch_layers, pm.peak_at) == (prof.peak_bytes, k, prof.peak_at)
    assert peak_memory(net).peak_sram_bytes == memory_profile(net).peak_bytes == 48 * 48 * (16 + 96)


# ---- OFA MobileNetV3 at r=112: every sub-network's peak is blocks.1's expand, by hand ----------
# 56x56x24 in + 56x56x(24 e) out: e=3 gives 301,056 B = 294 kB, the smallest any sub-network has
SMALLEST_112 = 56 * 56 * (24 + 72)


def run(capsys, *args):
    rc = main(["search", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@needs_predictor
def test_ofa_at_the_hand_counted_bound(tmp_path, capsys):
    assert SMALLEST_112 == 294 * KB
    d = tmp_path / "fit"
    rc, out, err = run(capsys, "--space", "ofa-mbv3", "--objective", "accuracy", "--max-sram", "294", "--resolution",
                       "112", "--population", "4", "--generations", "1", "--out", str(d), "--json", "--quiet")
    assert rc == 0, err
    res = json.loads(out)
    assert res["kind"] == "subnet" and res["best"]["peak_sram_bytes"] == SMALLEST_112
    assert all(p["peak_sram_bytes"] == SMALLEST_112 and p["arch"]["e"][0] == 3 and p["arch"]["r"] == 112
               for p in res["pareto"])
    assert (d / "report.md").exists() and (d / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((d / "result.json").read_text()) == res
    # codesign report re-renders the run: the same Markdown, and the chosen numbers in the JSON
    written = (d / "report.md").read_text()
    (d / "report.md").unlink()
    assert main(["report", str(d), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert (d / "report.md").read_text() == written and (d / "report.html").exists()
    assert rep["best"]["peak_sram_bytes"] == SMALLEST_112 and rep["accuracy_label"] == "predicted accuracy"
    assert "| predicted accuracy | peak SRAM (kB) |" in written
    # a resume repeats the (deterministic) search; other limits are refused
    rc, out, err = run(capsys, "--resume", str(d), "--json", "--quiet")
    assert rc == 0 and json.loads(out)["best"] == res["best"]
    rc, out, err = run(capsys, "--resume", str(d), "--max-sram", "300")
    assert rc == 2 and "--max-sram 300.0 (the run has 294.0)" in err
    # one kB less: nothing fits, one line that says by how much, and no run directory
    rc, out, err = run(capsys, "--space", "ofa-mbv3", "--objective", "accuracy", "--max-sram", "293", "--resolution",
                       "112", "--out", str(tmp_path / "no"))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "smallest peak SRAM found: 294 kB > 293 kB" in err and "--sram-schedule patch" in err
    assert not (tmp_path / "no").exists()


@needs_predictor
def test_patch_based_fits_where_layer_by_layer_cannot(tmp_path, capsys):
    rc, out, err = run(capsys, "--space", "ofa-mbv3", "--objective", "accuracy", "--mcu", "stm32f412", "--max-flash",
                       "20000", "--sram-schedule", "patch", "--resolution", "112", "--population", "4",
                       "--generations", "1", "--out", str(tmp_path / "p"), "--json", "--quiet")
    assert rc == 0, err
    res = json.loads(out)
    assert res["mcu"]["sram_kb"] == 256 and res["limits"]["max_sram_kb"] == 256
    assert res["limits"]["max_flash_kb"] == 20000
    b = res["best"]
    assert b["peak_sram_bytes"] <= 256 * KB < SMALLEST_112 and b["patch_layers"] > 0
    from models.spaces import get_space
    assert peak_memory(get_space("ofa-mbv3").to_network(b["arch"]), "patch").peak_sram_bytes == b["peak_sram_bytes"]


@needs_predictor
def test_an_mcu_board_whose_flash_nothing_fits(tmp_path, capsys):
    # the ofa-mbv3 weights alone take more than 4 MB in int8: no sub-network fits a 1 MB Flash
    rc, out, err = run(capsys, "--space", "ofa-mbv3", "--objective", "accuracy", "--mcu", "stm32f746",
                       "--resolution", "112", "--out", str(tmp_path / "f"))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "smallest Flash found: " in err and " kB > 1024 kB" in err and "peak SRAM" not in err


@needs_predictor
def test_memory_limits_inside_the_co_search(monkeypatch):
    """The co-search's mid loop: every sub-network it costs meets the accuracy constraint and the
    limits (the mapper is replaced by MACs to keep this quick)."""
    import mappings.evaluate
    from codesign.search.outer_loop import score_subnet

    costed = []

    class Fake:
        def __init__(self, net):
            self.total = type("T", (), {"edp": float(net.macs)})()

    def fake_evaluate(net, acc, **kw):
        costed.append(peak_memory(net).peak_sram_bytes)
        return Fake(net)

    monkeypatch.setattr(mappings.evaluate, "evaluate_network", fake_evaluate)
    cfg = SearchConfig(workloads=[], envelope="eyeriss", budget=1, space="ofa-mbv3", min_accuracy=0.75,
                       max_sram_kb=294, resolution=112, population=6, generations=2)
    out = score_subnet(None, cfg)
    assert costed and all(b == SMALLEST_112 for b in costed)  # nothing over the limit was ever costed
    assert out["subnet"]["memory"]["peak_sram_bytes"] == SMALLEST_112 and out["subnet"]["accuracy"] >= 0.75


@pytest.mark.parametrize("args,needle", [
    (["--max-sram", "256"], "--max-sram: option of the sub-network co-search: it needs --space"),
    (["--mcu", "stm32f746"], "--mcu: option of the sub-network co-search: it needs --space"),
    (["--objective", "accuracy"], "--objective accuracy searches the sub-networks of a --space"),
    (["--space", "ofa-mbv3", "--objective", "accuracy", "--envelope", "eyeriss", "--budget", "4"],
     "no accelerator: --envelope, --budget do not apply"),
    (["--space", "ofa-mbv3", "--objective", "accuracy", "--mcu", "esp32"], "unknown MCU board 'esp32' (known: "),
    (["--space", "ofa-mbv3", "--min-accuracy", "0.7", "--sram-schedule", "patch"],
     "--sram-schedule: the schedule the peak-SRAM limit is computed under: it needs --max-sram or --mcu"),
])
def test_option_errors_are_one_line(tmp_path, capsys, args, needle):
    rc, out, err = run(capsys, *args, "--out", str(tmp_path / "r"))
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args,needle", [
    (["--max-sram", "0"], "--max-sram: expected a number > 0"),
    (["--max-sram", "nan"], "--max-sram: expected a number > 0"),
    (["--max-flash", "1e12"], "--max-flash: expected a number > 0 and <= 1.04858e+06"),
    (["--sram-schedule", "fused"], "--sram-schedule: invalid choice"),
    (["--mcu", "a", "--mcu", "b"], "--mcu: given twice"),
])
def test_option_values_are_bounded(tmp_path, capsys, args, needle):
    with pytest.raises(SystemExit) as e:
        main(["search", "--space", "ofa-mbv3", *args, "--out", str(tmp_path / "r")])
    assert e.value.code == 2 and needle in capsys.readouterr().err


def test_a_tight_limit_is_reached_by_mutating_towards_it():
    """A corner no random sample hits: 8 genes, all must be 1 (one sample in 3^8 = 6561)."""

    class Genes:
        def sample(self, rng):
            return {"g": [int(v) for v in rng.integers(1, 4, 8)]}

        def mutate(self, arch, rng, prob):
            return {"g": [int(rng.integers(1, 4)) if rng.random() < prob else v for v in arch["g"]]}

        def crossover(self, a, b, rng):
            return {"g": [x if rng.random() < 0.5 else y for x, y in zip(a["g"], b["g"])]}

    class Flat:
        def predict(self, archs):
            return np.full(len(archs), 0.5)

    def total(a):
        return {"size": float(sum(a["g"]))}

    cfg = EvolutionConfig(population=4, generations=1, seed=0, select="accuracy", max_tries=20, mutation_prob=0.2)
    res = evolve(Genes(), Flat(), lambda a: total(a)["size"], 0.0, cfg, measure=total,
                 limits=[Limit("size", 8, "size")])
    assert res.best.arch == {"g": [1] * 8} and res.best.measures == {"size": 8.0}
    with pytest.raises(InfeasibleError, match=r"smallest size found: 8 > 7$"):
        evolve(Genes(), Flat(), lambda a: 1.0, 0.0, cfg, measure=total, limits=[Limit("size", 7, "size")])
