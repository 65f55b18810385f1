"""``codesign workloads list|show`` through the CLI entry point."""
import json

import pytest

from codesign.cli import main
from models.zoo import get_network, names


def run(capsys, *argv):
    try:
        rc = main(list(argv))
    except SystemExit as e:  # a usage error (argparse)
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_list_text_and_json(capsys):
    rc, out, err = run(capsys, "workloads", "list")
    assert rc == 0 and err == ""
    for name in names():
        assert name in out
    rc, out, _ = run(capsys, "workloads", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert list(rows) == names()
    assert abs(rows["vgg16"]["macs"] - 15.47e9) / 15.47e9 < 0.005  # torchvision: 15.47 GFLOPS


def test_show_resnet50_json(capsys):
    rc, out, _ = run(capsys, "workloads", "show", "resnet50", "--json")
    assert rc == 0
    d = json.loads(out)
    # published: 4.09 GMACs at 224x224 (torchvision ResNet-50), required within 0.5 %
    assert abs(d["total"]["macs"] - 4.09e9) / 4.09e9 <= 0.005
    assert d["name"] == "resnet50" and d["resolution"] == 224
    assert d["total"]["layers"] == len(d["layers"]) == 54
    assert sum(l["macs"] for l in d["layers"]) == d["total"]["macs"]
    first = d["layers"][0]
    assert first["name"] == "conv1" and first["dims"] == dict(G=1, N=1, K=64, C=3, P=112, Q=112, R=7, S=7)
    assert first["macs"] == 64 * 3 * 49 * 112 * 112 and first["stride"] == 2
    assert isinstance(d["unique_shapes"], int) and 0 < d["unique_shapes"] < 54


def test_show_text_and_options(capsys):
    rc, out, _ = run(capsys, "workloads", "show", "mobilenet-v2", "--resolution", "160")
    assert rc == 0 and "features.2.conv.1.0" in out and "dwconv" in out and "total:" in out
    rc, out, _ = run(capsys, "workloads", "show", "bert_base_layer", "--seq-len", "64", "--json")
    assert json.loads(out)["total"]["macs"] == 64 * (4 * 768 * 768 + 2 * 768 * 3072) + 2 * 64 * 64 * 768


def test_show_network_json_file(tmp_path, capsys):
    net = get_network("squeezenet1_1", resolution=128)
    path = tmp_path / "sq.json"
    path.write_text(json.dumps(net.to_dict()))
    rc, out, _ = run(capsys, "workloads", "show", str(path), "--json")
    assert rc == 0 and json.loads(out)["total"]["macs"] == net.macs


def _one_error_line(err):
    """The one error line, last on stderr (after the usage, for a usage error)."""
    lines = err.strip().splitlines()
    errors = [l for l in lines if l.startswith("codesign: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in err
    return errors[0]


@pytest.mark.parametrize("argv,word", [
    (["workloads", "show", "resnet51"], "resnet51"),
    (["workloads", "show", "resnet50", "--resolution", "0"], "resolution"),
    (["workloads", "show", "unet", "--resolution", "224"], "unet"),
    (["workloads", "show", "missing/net.json"], "not found"),
])
def test_bad_names_exit_2(capsys, argv, word):
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert word in _one_error_line(err)


@pytest.mark.parametrize("text,word", [
    ('{"name": "x", "layers": [', "malformed JSON"),
    ('{"name": "x", "layers": [{"name": "a", "dims": {"K": 0, "C": 3}}]}', "dims.K"),
    ('{"name": "x", "layers": [{"name": "a", "dims": {"K": 8, "P": -2}}]}', "dims.P"),
    ('{"name": "x", "layers": []}', "MAC layer"),
])
def test_bad_json_files_exit_2(tmp_path, capsys, text, word):
    path = tmp_path / "bad.json"
    path.write_text(text)
    rc, out, err = run(capsys, "workloads", "show", str(path), "--json")
    assert rc == 2 and out == ""
    assert word in _one_error_line(err)


def test_malformed_onnx_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"definitely not onnx")
    rc, out, err = run(capsys, "workloads", "show", str(path))
    assert rc == 2 and out == ""
    assert "bad.onnx" in _one_error_line(err)
