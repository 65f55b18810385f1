"""The batch kernel in a process forked after its parent used numba's thread pool (the board
agent's worker, a forked process pool): it must give the same numbers, not die or hang."""
import os
import pickle

import numpy as np
import pytest

from accelerators import load_accelerator
from accelerators.kernel import evaluate_batch
from codesign.bench.costmodel import random_mappings
from models.layer import Layer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def test_forked_child_evaluates_like_its_parent():
    acc = load_accelerator("eyeriss")
    layer = Layer(K=32, C=16, P=14, Q=14, R=3, S=3)
    T, S, O = random_mappings(layer, acc, 5000, np.random.default_rng(0))
    want = evaluate_batch(layer, acc, T, S, O)  # the parent starts the thread pool
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(r)
            with os.fdopen(w, "wb") as f:
                pickle.dump(evaluate_batch(layer, acc, T, S, O), f)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    got = pickle.loads(data)
    assert (want[:, 0] == 0).sum() > 0  # some valid mappings among the random ones
    np.testing.assert_array_equal(got, want)
