"""Graph edges of a network: recorded by the builders, saved, checked on load."""
import json

import pytest

from models import Layer, Network
from models.errors import WorkloadError
from models.zoo import get_network, names


@pytest.mark.parametrize("name", names())
def test_zoo_graphs_round_trip_and_cover_every_node(name):
    net = get_network(name)
    nodes = {l.name for l in net.layers} | {a.name for a in net.aux}
    assert set(net.inputs) == nodes
    back = Network.from_dict(json.loads(json.dumps(net.to_dict())))
    assert back.inputs == net.inputs
    g = net.graph()
    assert g.number_of_nodes() == len(nodes) + 1


def test_residual_adds_read_the_block_input():
    net = get_network("mobilenet_v2", resolution=64)
    assert net.inputs["features.3.add"] == ("features.3.conv.2", "features.2.conv.2")
    r = get_network("resnet18", resolution=64)
    assert r.inputs["layer1.0.add"] == ("layer1.0.conv2", "maxpool")
    assert r.inputs["layer2.0.add"] == ("layer2.0.conv2", "layer2.0.downsample.0")
    assert r.inputs["layer2.0.downsample.0"] == ("layer1.1.add",)


def _two():
    return [Layer.conv("a", 3, 8, 8, 3), Layer.conv("b", 8, 8, 8, 3)]


@pytest.mark.parametrize("inputs, match", [
    ({"a": ("input",)}, "none for \\['b'\\]"),
    ({"a": ("input",), "b": ("zz",)}, "unknown node"),
    ({"a": ("b",), "b": ("a",)}, "cycle"),
    ({"a": ("b",), "b": ("input",)}, "comes after it"),
    ({"a": ("input",), "b": ()}, "reads nothing"),
])
def test_bad_graphs_are_one_clear_error(inputs, match):
    with pytest.raises(WorkloadError, match=match):
        Network("n", _two(), inputs=inputs)


def test_inputs_given_for_some_nodes_only_is_refused():
    d = Network("n", _two(), inputs={"a": ("input",), "b": ("a",)}).to_dict()
    del d["layers"][1]["inputs"]
    with pytest.raises(WorkloadError, match="every layer and operator or for none"):
        Network.from_dict(d)


def test_networks_without_edges_still_load():
    d = Network("n", _two()).to_dict()
    assert "inputs" not in d["layers"][0]
    assert Network.from_dict(d).inputs == {}
