"""Accuracy predictors of the Once-for-All authors, evaluated as batched numpy MLPs.

``load_predictor("ofa-mbv3")`` reads ``ofa/acc_predictor.pth`` (MobileNetV3 w1.2: MLP
128 -> 400 -> 400 -> 400 -> 1, ReLU) and ``load_predictor("ofa-resnet50")`` reads
``ofa/ofa_resnet50_acc_predictor.pth`` (82 -> 400 -> 400 -> 400 -> 1 without output bias,
plus a learned ``base_acc``) from the asset directory. ``torch`` is used only to unpickle the
file; the weights are kept as float32 numpy arrays. Predictions are top-1 accuracy as a
fraction. The input features are the spaces' ``encode`` vectors.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .assets import asset_path
from .errors import AssetMissing, CodesignError
from .spaces import get_space

MANIFEST = Path(__file__).with_name("assets_manifest.json")

# space name -> asset (relative path in the asset directory)
PREDICTOR_ASSETS = {
    "ofa-mbv3": "ofa/acc_predictor.pth",
    "ofa-resnet50": "ofa/ofa_resnet50_acc_predictor.pth",
}


def asset_origin(relative: str) -> str:
    """Where an asset comes from, as the manifest states it (empty if unlisted)."""
    try:
        entries = json.loads(MANIFEST.read_text())["assets"]
    except (OSError, ValueError, KeyError):
        return ""
    for e in entries:
        if e.get("path") == relative:
            url = e.get("url")
            return f"{e.get('origin', '')} ({url})" if url else e.get("origin", "")
    return ""


class AccuracyPredictor:
    """``y = W_L relu(... relu(W_1 x + b_1) ...) + b_L + offset`` on batches of feature rows."""

    def __init__(self, space: str, weights: list[tuple[np.ndarray, np.ndarray | None]], offset: float = 0.0):
        self.space_name = space
        self.space = get_space(space)
        self.weights = weights
        self.offset = float(offset)
        self.n_features = weights[0][0].shape[1]

    def predict_features(self, X) -> np.ndarray:
        """Top-1 accuracy (fraction) for each row of the feature matrix ``X``."""
        h = np.asarray(X, dtype=np.float32)
        if h.ndim == 1:
            h = h[None, :]
        if h.ndim != 2 or h.shape[1] != self.n_features:
            raise CodesignError(f"{self.space_name} predictor: expected rows of {self.n_features} features, "
                                f"got shape {np.shape(X)}")
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(self.weights):
            h = h @ w.T
            if b is not None:
                h += b
            if i < last:
                np.maximum(h, 0.0, out=h)
        y = h[:, 0].astype(np.float64) + self.offset
        if not np.isfinite(y).all():
            raise CodesignError(f"{self.space_name} predictor produced a non-finite value")
        return y

    def predict(self, archs) -> np.ndarray:
        """Top-1 accuracy (fraction) of each architecture (dicts of the predictor's space)."""
        archs = list(archs)
        if not archs:
            return np.zeros(0)
        return self.predict_features(self.space.encode_batch(archs))

    def __repr__(self) -> str:
        return f"<AccuracyPredictor {self.space_name}: {' -> '.join(str(w.shape[1]) for w, _ in self.weights)} -> 1>"


def _state_dict(path: Path) -> dict:
    import torch
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which one and how to get a good one
        raise AssetMissing(f"{path} is not a readable predictor file ({type(e).__name__}); "
                           f"fetch it again with 'codesign assets fetch'") from None
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in sd.items()}


def _mlp(sd: dict, keys: list[tuple[str, str | None]], path: Path) -> list:
    try:
        return [(sd[w], sd[b] if b else None) for w, b in keys]
    except KeyError as e:
        raise AssetMissing(f"{path}: predictor file lacks weight {e.args[0]!r}") from None


@lru_cache(maxsize=None)
def load_predictor(space: str = "ofa-mbv3") -> AccuracyPredictor:
    """The accuracy predictor for ``space`` ("ofa-mbv3" or "ofa-resnet50"), loaded once."""
    key = str(space).strip().lower().replace("_", "-")
    key = "ofa-mbv3" if key == "ofa-mbv3-w1.2" else key
    if key not in PREDICTOR_ASSETS:
        raise CodesignError(f"no accuracy predictor for space {space!r} (available: {', '.join(PREDICTOR_ASSETS)})")
    rel = PREDICTOR_ASSETS[key]
    path = asset_path(rel, origin=asset_origin(rel) or "the Once-for-All authors' public release files")
    sd = _state_dict(path)
    if key == "ofa-mbv3":
        weights = _mlp(sd, [(f"{i}.weight", f"{i}.bias") for i in (0, 2, 4, 6)], path)
        offset = 0.0
    else:
        weights = _mlp(sd, [(f"layers.{i}.0.weight", f"layers.{i}.0.bias") for i in range(3)]
                       + [("layers.3.weight", None)], path)
        offset = float(sd.get("base_acc", np.zeros(1)).reshape(-1)[0])
    pred = AccuracyPredictor(key, weights, offset)
    expected = get_space(key).n_features
    if pred.n_features != expected:
        raise AssetMissing(f"{path}: predictor expects {pred.n_features} inputs, the {key} encoding has {expected}")
    return pred
