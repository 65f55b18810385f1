"""Mapping: validation, array and JSON round trips, the loop-nest text."""
import json

import numpy as np
import pytest

from accelerators import load_accelerator
from mappings.mapping import Mapping
from models.errors import MappingError
from models.layer import DIMS, Layer

IDENT = list(range(8))


def _row(**f):
    return [f.get(d, 1) for d in DIMS]


def ws_mapping():
    """K=4, C=2 (spatial on array dims 0 and 1), P=Q=4, R=S=3: a hand-written mapping."""
    return Mapping(temporal=[_row(R=3, S=3), _row(P=4, Q=4), _row(K=2)],
                   spatial=[_row(K=2), _row(C=2)],
                   order=[IDENT, [4, 5, 2, 3, 6, 7, 0, 1], [2, 0, 1, 3, 4, 5, 6, 7]])


def test_rows_are_padded_and_arrays_round_trip():
    m = ws_mapping()
    assert len(m.spatial) == 3 and m.spatial[2] == (1,) * 8
    T, S, O = m.to_arrays()
    assert T.shape == S.shape == O.shape == (3, 8) and T.dtype == np.int64
    assert Mapping.from_arrays(T, S, O) == m
    assert m.factor("K") == 4 and m.factor("C") == 2 and m.factor("R") == 3
    assert m.tile_extents(0) == (1, 1, 1, 1, 1, 1, 3, 3)
    assert m.tile_extents(1) == (1, 1, 2, 2, 4, 4, 3, 3)


def test_json_round_trip_and_readable_form():
    m = ws_mapping()
    d = json.loads(json.dumps(m.to_dict()))
    assert d["temporal"]["dram"] == {"K": 2}
    assert d["spatial"][0] == {"K": 2} and d["spatial"][2] == {}
    assert d["order"]["glb"] == "PQKCRSGN"
    assert Mapping.from_dict(d) == m
    # rows of eight integers are accepted too
    T, S, O = m.to_arrays()
    assert Mapping.from_dict({"temporal": T.tolist(), "spatial": S.tolist(), "order": O.tolist()}) == m


@pytest.mark.parametrize("bad", [
    {"temporal": [_row()] * 3, "spatial": [_row()], "order": [IDENT, IDENT, [0] * 8]},
    {"temporal": [_row()] * 2, "spatial": [_row()], "order": [IDENT] * 3},
    {"temporal": [_row()] * 3, "spatial": [_row()] * 4, "order": [IDENT] * 3},
    {"temporal": [[1] * 7] * 3, "spatial": [_row()], "order": [IDENT] * 3},
])
def test_malformed_mappings_are_rejected(bad):
    with pytest.raises(MappingError):
        Mapping(**bad)


def test_from_dict_errors_are_clear():
    orders = {"rf": "GNKCPQRS", "glb": "GNKCPQRS", "dram": "GNKCPQRS"}
    with pytest.raises(MappingError, match="unknown dimension"):
        Mapping.from_dict({"temporal": {"rf": {"X": 2}}, "spatial": [], "order": orders})
    with pytest.raises(MappingError, match="order"):
        Mapping.from_dict({"temporal": {}, "spatial": [], "order": dict(orders, rf="GNKCPQR")})
    with pytest.raises(MappingError, match="malformed"):
        Mapping.from_dict({"temporal": {}})


def test_pretty_prints_the_loop_nest_outermost_first():
    layer = Layer(K=4, C=2, P=4, Q=4, R=3, S=3)
    acc = load_accelerator("nvdla-256")  # array: K x C
    text = ws_mapping().pretty(layer, acc)
    lines = [l.strip() for l in text.splitlines()]
    loops = [l for l in lines if l.startswith(("for", "spatial_for", "mac"))]
    # DRAM: k2; buffer order P Q innermost first -> printed q1 then p1; the array; RF: s0 then r0
    assert loops == ["for k2 in [0:2)", "for q1 in [0:4)", "for p1 in [0:4)", "spatial_for ks0 in [0:2)",
                     "spatial_for cs1 in [0:2)", "for s0 in [0:3)", "for r0 in [0:3)", "mac"]
    # register-file tile of one PE: a 3x3 filter window: 9 weights, 9 inputs, 1 output
    rf = next(l for l in lines if l.startswith("[register file"))
    assert "tile W 9 I 9 O 1 words" in rf
    # each nested loop is indented one step further
    depth = [len(l) - len(l.lstrip()) for l in text.splitlines() if l.strip().startswith(("for", "spatial_for", "mac"))]
    assert depth == sorted(depth) and len(set(depth)) == len(depth)
