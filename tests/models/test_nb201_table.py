"""The NAS-Bench-201 measured table (HW-NAS-Bench-360, CIFAR-100, Raspberry Pi 5)."""
import gzip

import numpy as np
import pytest

from models.assets import have_asset
from models.errors import AssetMissing, CodesignError
from models.nb201_table import HW360_ASSET, TableAccuracy, load_hw360

NEEDS = "needs the NAS-Bench-201 table: set CODESIGN_ASSETS to the shared data folder"
needs_table = pytest.mark.skipif(not have_asset(HW360_ASSET), reason=NEEDS)
# the file's first row, as printed by `zcat hw360_cifar100_pi5.csv.gz | head -2`
FIRST = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


@needs_table
def test_every_cell_once_with_its_accuracy_and_latency():
    t = load_hw360()
    assert len(t) == 15625 and len(t.index) == 15625
    assert t.accuracy[t.row(FIRST)] == pytest.approx(0.529133)
    assert t.latency("onnx")[t.row(FIRST)] == pytest.approx(1.8305)
    assert t.energy_mj["litert"][t.row(FIRST)] == pytest.approx(2.57532)
    assert 0 < t.accuracy.min() and t.accuracy.max() < 1 and np.isfinite(t.accuracy).all()
    # the all-`none` cell cannot learn: chance level on 100 classes
    assert t.accuracy[t.row({"ops": ["none"] * 6})] == pytest.approx(0.01)


@needs_table
def test_table_accuracy_looks_up_cells_in_either_form():
    p = TableAccuracy()
    ops = {"ops": ["avg_pool_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_1x1", "skip_connect", "skip_connect"]}
    assert p.predict([FIRST, ops]).tolist() == pytest.approx([0.529133, 0.529133])
    assert p.predict([]).shape == (0,)
    with pytest.raises(CodesignError, match="unknown operator"):
        p.predict(["|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
    with pytest.raises(CodesignError, match="unknown nasbench201 runtime"):
        p.table.latency("tflite")


def test_a_broken_table_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "nasbench201").mkdir()
    with gzip.open(tmp_path / HW360_ASSET, "wt") as f:
        f.write("arch_idx,arch_str\n0,|none~0|\n")
    monkeypatch.setenv("CODESIGN_ASSETS", str(tmp_path))
    load_hw360.cache_clear()
    try:
        with pytest.raises(AssetMissing, match="not a readable HW-NAS-Bench-360 table"):
            load_hw360()
    finally:
        load_hw360.cache_clear()
