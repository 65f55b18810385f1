"""Patch-based stages across pooling operators (MCUNetV2 fuses the stem's max-pool into its first
stage), counted by hand on ResNet-18."""
import pytest

from accelerators.memory import best_patch_stage, memory_profile, patch_stacks, peak_memory
from models.zoo import get_network


@pytest.fixture(scope="module")
def r18():
    return get_network("resnet18")


def test_resnet18_first_stage_crosses_the_max_pool(r18):
    k, prof = best_patch_stage(r18, 4)
    # the stage: stem, max-pool, layer1.0.conv1, layer1.0.conv2 (its add reads the pool's output)
    assert k == 3 and r18.layers[k - 1].name == "layer1.0.conv2"
    # 4x4 patches of the 56x56 output: 14x14. Back through conv2 (3x3): 16x16; conv1 (3x3): 18x18
    # of the pool's output; the pool (3x3/2): 17*2+3 = 37 rows and columns of the stem's output;
    # the stem (7x7/2): 36*2+7 = 79 of the image. Largest moment, the pool's: 64*37*37 + 64*18*18
    # = 108,352; plus the skip tile held for the add (64*14*14 = 12,544) and the whole 56x56x64
    # output (200,704)
    assert prof.rows[0]["bytes"] == 56 * 56 * 64 + 64 * (37 * 37 + 18 * 18) + 64 * 14 * 14 == 321_600
    assert max(3 * 79 * 79 + 64 * 37 * 37, 64 * (18 * 18 + 16 * 16)) < 64 * (37 * 37 + 18 * 18)
    # the rest of the network sets the peak: layer1.1.conv1's 56x56x64 input and output
    assert prof.peak_bytes == 2 * 56 * 56 * 64 and prof.peak_at == "layer1.1.conv1"
    lbl = memory_profile(r18)
    assert lbl.peak_bytes == 1_204_224  # layer by layer, unchanged
    assert lbl.peak_bytes / prof.peak_bytes == 3.0
    pm = peak_memory(r18, "patch")
    assert (pm.peak_sram_bytes, pm.patch_layers) == (prof.peak_bytes, 3)


def test_a_stage_ending_before_the_add_holds_the_pool_output_whole(r18):
    prof = memory_profile(r18, patch_stacks(r18, 2, 4))
    # stem .. layer1.0.conv1 in 4x4 patches of 56x56: 14x14 <- 16x16 of the pool's output <- 33x33
    # of the stem's <- 71x71 of the image; the pool's output (the add's skip, read after the
    # stage) is held whole beside the stage's output
    per_patch = max(3 * 71 * 71 + 64 * 33 * 33, 64 * (33 * 33 + 16 * 16), 64 * (16 * 16 + 14 * 14))
    assert prof.rows[0]["bytes"] == 2 * 56 * 56 * 64 + per_patch


def test_vgg16_stage_crosses_two_pools():
    vgg = get_network("vgg16")
    k, prof = best_patch_stage(vgg, 4)
    names = [l.name for l in vgg.layers]
    assert names[:k] == ["features.0", "features.2", "features.5", "features.7", "features.10"]
    assert prof.peak_bytes == 2 * 56 * 56 * 256 and prof.peak_at == "features.12"
    assert memory_profile(vgg).peak_bytes / prof.peak_bytes == 4.0


def test_mobilenet_v2_is_unchanged():
    mbv2 = get_network("mobilenet_v2")
    k, prof = best_patch_stage(mbv2, 4)
    assert (k, prof.peak_bytes) == (12, 175_832)
