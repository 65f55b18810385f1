"""One BERT-base encoder layer (Devlin et al. 2019): hidden 768, 12 heads, FFN 3072.

Names follow the Hugging Face ``BertLayer`` modules; the two attention products are
activation x activation matmuls batched over heads.
"""
from __future__ import annotations

from ..layer import Layer
from ..network import NETWORK_INPUT, Network
from ._builder import NetBuilder

HIDDEN, HEADS, FFN = 768, 12, 3072
DEFAULT_SEQ_LEN = 128


def bert_base_layer(seq_len: int = DEFAULT_SEQ_LEN, batch: int = 1) -> Network:
    d, h, f = HIDDEN, HEADS, FFN
    tokens, head_dim = batch * seq_len, d // h
    b = NetBuilder("bert_base_layer", d, 1, batch)
    act, scores = tokens * d, batch * h * seq_len * seq_len
    x = NETWORK_INPUT
    for proj in ("query", "key", "value"):
        b.layer(Layer.fc(f"attention.self.{proj}", d, d, batch=tokens), inputs=(x,))
    b.layer(Layer.matmul("attention.self.scores", seq_len, head_dim, seq_len, batch=batch * h),
            inputs=("attention.self.query", "attention.self.key"))
    b.op("attention.self.softmax", "softmax", scores, scores)
    b.layer(Layer.matmul("attention.self.context", seq_len, seq_len, head_dim, batch=batch * h),
            inputs=("attention.self.softmax", "attention.self.value"))
    b.layer(Layer.fc("attention.output.dense", d, d, batch=tokens))
    b.op("attention.output.add", "add", 2 * act, act, inputs=(b.src, x))
    b.op("attention.output.LayerNorm", "norm", act, act)
    mid = b.src
    b.layer(Layer.fc("intermediate.dense", d, f, batch=tokens))
    b.layer(Layer.fc("output.dense", f, d, batch=tokens))
    b.op("output.add", "add", 2 * act, act, inputs=(b.src, mid))
    b.op("output.LayerNorm", "norm", act, act)
    return b.build(None, source="Devlin et al. 2019 (BERT-base)", seq_len=seq_len)
