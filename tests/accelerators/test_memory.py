"""Peak activation memory (MCU view), against hand counts and MCUNetV2's published MobileNetV2 figures."""
import pytest

from accelerators.memory import best_patch_stage, memory_profile, patch_stacks
from codesign.cli import main
from models.zoo import get_network


@pytest.fixture(scope="module")
def mbv2():
    return get_network("mobilenet_v2")


def row(prof, name):
    return next(r["bytes"] for r in prof.rows if r["name"] == name)


def test_layer_by_layer_peak_is_mcunetv2s_1372_kb(mbv2):
    prof = memory_profile(mbv2)
    # features.2's expand: 112x112x16 in + 112x112x96 out, int8 = 1,404,928 B = 1372 kB (MCUNetV2 Fig. 1)
    assert prof.peak_bytes == 112 * 112 * (16 + 96) == 1_404_928
    assert prof.peak_at == "features.2.conv.0.0"
    # the stem: 224x224x3 + 112x112x32 = 551,936 B (539 kB)
    assert row(prof, "features.0.0") == 224 * 224 * 3 + 112 * 112 * 32
    assert prof.flash_bytes == mbv2.params


def test_residual_inputs_are_held_and_depthwise_runs_in_place(mbv2):
    prof = memory_profile(mbv2)
    # block 3's project: its 56x56x144 input and its 56x56x24 output, accumulated in place into
    # block 2's output (held for the add since block 3 began)
    assert row(prof, "features.3.conv.2") == 56 * 56 * (144 + 24)
    # block 3's depthwise: in place, and the skip held
    assert row(prof, "features.3.conv.1.0") == 56 * 56 * (144 + 24)
    # block 3's expand reads block 2's output, which is also the skip: counted once
    assert row(prof, "features.3.conv.0.0") == 56 * 56 * (24 + 144)
    # depthwise in place: max(in, out) (the stride-2 one of block 2), else in + out
    assert row(prof, "features.2.conv.1.0") == 112 * 112 * 96
    off = memory_profile(mbv2, inplace=False)
    assert row(off, "features.2.conv.1.0") == 112 * 112 * 96 + 56 * 56 * 96
    assert row(off, "features.3.conv.2") == 56 * 56 * (144 + 24 + 24)


def test_patch_based_first_stage_cuts_the_peak_8x(mbv2):
    k, prof = best_patch_stage(mbv2, 4)
    # the best stage ends at the first 28x28 block output (features.4), as MCUNetV2's "first 5 blocks"
    assert mbv2.layers[k - 1].name == "features.4.conv.2"
    # the rest's peak is features.5: 28x28x32 (held for its add) + 28x28x192 = 175,616 B (172 kB)
    assert row(prof, "features.5.conv.0.0") == 28 * 28 * (32 + 192)
    assert prof.peak_bytes <= 256 * 1024
    assert memory_profile(mbv2).peak_bytes / prof.peak_bytes == pytest.approx(8.0, abs=0.2)
    # more patches never need more memory for the stage
    stage = [memory_profile(mbv2, patch_stacks(mbv2, k, n)).rows[0]["bytes"] for n in (2, 3, 4, 6)]
    assert stage == sorted(stage, reverse=True)


def test_memory_command(capsys):
    assert main(["memory", "--workload", "mobilenet_v2", "--sram-kb", "256", "--flash-kb", "1024"]) == 0
    out = capsys.readouterr().out
    assert "layer by layer: peak 1372.0 kB at features.2.conv.0.0  does NOT fit 256 kB" in out
    assert "in 4x4 patches: peak 171.7 kB" in out and "fits 256 kB (8.0x less)" in out


def test_memory_command_without_edges(capsys, tmp_path):
    import json

    from models import Layer, Network
    p = tmp_path / "flat.json"
    p.write_text(json.dumps(Network("flat", [Layer.conv("a", 3, 8, 8, 3), Layer.conv("b", 8, 8, 8, 3)]).to_dict()))
    assert main(["memory", "--workload", str(p)]) == 0
    assert "no graph edges" in capsys.readouterr().out
    rc = main(["memory", "--workload", str(p), "--patch-layers", "2"])
    err = capsys.readouterr().err
    assert rc != 0 and "no graph edges" in err and len(err.strip().splitlines()) == 1
