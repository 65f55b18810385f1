"""Accelerator descriptions: presets, YAML round trip, validation errors, energy scaling."""
import json

import pytest
import yaml

from accelerators import (Envelope, accelerator_from_dict, envelope_of, load_accelerator,
                          load_energy_table, preset_names)
from codesign.cli import main
from models.errors import AcceleratorError

BASE = {
    "name": "t", "array": [{"size": 4, "loops": ["K"]}],
    "rf": {"capacity_bytes": 64}, "glb": {"capacity_bytes": 4096, "bw_words_per_cycle": 8},
    "dram": {"bw_words_per_cycle": 2},
}


def test_presets_exist_and_match_their_sources():
    assert {"eyeriss", "nvdla-256", "nvdla-1024", "shidiannao", "edgetpu", "tpu-v1", "simba"} <= set(preset_names())
    e = load_accelerator("eyeriss")
    assert e.num_pes == 12 * 14
    assert e.glb.capacity_bytes == 108 * 1024
    assert e.rf.split_bytes == {"W": 224 * 2, "I": 12 * 2, "O": 24 * 2}
    assert e.clock_mhz == 200
    assert load_accelerator("tpu-v1").num_pes == 256 * 256
    assert load_accelerator("tpu-v1").glb.capacity_bytes == 24 * 2 ** 20
    assert load_accelerator("nvdla-1024").num_pes == 1024


def test_eyeriss_energies_follow_the_normalized_table():
    e = load_accelerator("eyeriss")
    # at the reference capacities the ratios hold: MAC 1, RF 1, NoC 2, GLB 6, DRAM 200
    assert e.mac_energy_pj == 1.0
    assert e.glb.read_energy_pj == pytest.approx(6.0)
    assert e.dram.read_energy_pj == 200.0
    assert e.noc_energy_pj == 2.0
    t = load_energy_table("eyeriss-65nm")
    # sqrt scaling: 4x the capacity costs 2x per access
    assert t.access_energy_pj("glb", 4 * 110592) == pytest.approx(12.0)
    # an 8-bit MAC costs a quarter of a 16-bit one
    assert t.mac_energy_pj({"W": 8, "I": 8, "O": 32}) == pytest.approx(0.25)


def test_yaml_round_trip_and_fingerprint(tmp_path):
    for name in preset_names():
        a = load_accelerator(name)
        p = tmp_path / f"{name}.yaml"
        a.save(p)
        b = load_accelerator(p)
        assert b == a
        assert b.fingerprint() == a.fingerprint()
    a = load_accelerator("eyeriss")
    assert a.with_name("other").fingerprint() == a.fingerprint()
    assert load_accelerator("nvdla-256").fingerprint() != a.fingerprint()


@pytest.mark.parametrize("mutate, msg", [
    (lambda d: d.pop("glb"), "accelerator: glb: missing field"),
    (lambda d: d["rf"].update(capacity_bytes=-5), "'capacity_bytes' must be > 0"),
    (lambda d: d["array"][0].update(loops=["X"]), "unknown loop dimension"),
    (lambda d: d["array"][0].update(size=0), "'size' must be > 0"),
    (lambda d: d.update(array=[]), "1 to 3 dimensions"),
    (lambda d: d["dram"].pop("bw_words_per_cycle"), "dram.bw_words_per_cycle: missing field"),
    (lambda d: d["rf"].update(capacity_bytes={"W": 8, "Z": 8}), "unknown data space"),
    (lambda d: d.update(word_bits={"W": 8}), "word_bits"),
    (lambda d: d.update(colour="red"), "unknown field"),
    (lambda d: d.update(energy_table="nope"), "unknown energy table"),
])
def test_validation_errors(mutate, msg):
    d = json.loads(json.dumps(BASE))
    mutate(d)
    with pytest.raises(AcceleratorError, match=msg):
        accelerator_from_dict(d)


def test_envelope():
    env = envelope_of("eyeriss")
    assert env.max_pes == 168 and env.max_onchip_bytes == 168 * 520 + 110592
    assert env.fits(load_accelerator("eyeriss"))
    v = env.violations(load_accelerator("nvdla-1024"))
    assert any(s.startswith("PEs 1024 > 168") for s in v)
    assert Envelope(10, 10, 1).violations(load_accelerator("eyeriss"))


def test_cli_list_and_show(capsys, tmp_path):
    assert main(["accelerators", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(preset_names())
    assert main(["accelerators", "show", "eyeriss", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["num_pes"] == 168 and d["array"][0] == {"size": 12, "loops": ["R", "C"]}
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(BASE))
    assert main(["accelerators", "show", str(p), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_pes"] == 4


@pytest.mark.parametrize("arg, content, msg", [
    ("nosuch", None, "unknown accelerator 'nosuch'"),
    ("bad.yaml", "array: [\n", "malformed YAML"),
    ("neg.yaml", yaml.safe_dump({**BASE, "rf": {"capacity_bytes": -1}}), "must be > 0"),
    ("missing.yaml", None, "not found"),
])
def test_cli_errors_are_one_line(capsys, tmp_path, arg, content, msg):
    path = arg
    if arg.endswith(".yaml"):
        path = str(tmp_path / arg)
        if content is not None:
            (tmp_path / arg).write_text(content)
    assert main(["accelerators", "show", path]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1
