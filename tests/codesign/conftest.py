"""Fixtures shared by the co-search tests."""
import json

import pytest

from models import Layer, Network


@pytest.fixture(scope="module")
def tiny_workload(tmp_path_factory):
    """A four-layer network file (stem, depthwise, pointwise, classifier) small enough to search in seconds."""
    pytest.importorskip("mappings.evaluate", reason="needs the mapping layer")
    net = Network("tiny", [Layer.conv("c1", 3, 16, 16, 3, stride=2), Layer.conv("dw", 16, 16, 16, 3, groups=16),
                           Layer.conv("pw", 16, 32, 16, 1), Layer.fc("fc", 32, 10)])
    p = tmp_path_factory.mktemp("wl") / "tiny.json"
    p.write_text(json.dumps(net.to_dict()))
    return str(p)


@pytest.fixture(scope="module")
def two_layer(tmp_path_factory):
    """A two-layer network file (a strided stem and a classifier): the smallest search."""
    net = Network("two", [Layer.conv("c1", 3, 8, 8, 3, stride=2), Layer.fc("fc", 8, 10)])
    p = tmp_path_factory.mktemp("wl") / "two.json"
    p.write_text(json.dumps(net.to_dict()))
    return str(p)
