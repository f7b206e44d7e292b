"""Writes an fp32 ONNX graph of all-MiniLM-L6-v2 from its safetensors weights.

usage: python3 scripts/make_minilm_fp32.py WEIGHTS_DIR OUT_ONNX

(normally run by ``scripts/fetch-text-models --fp32``, inside its venv, with
WEIGHTS_DIR = .cache/text-models/minilm-fp32 and OUT_ONNX =
.cache/models-fp32/minilm-fp32/model.onnx; that script checks the sha256
of the inputs and of what this writes).

WEIGHTS_DIR holds sentence-transformers' ``model.safetensors`` and
``config.json`` (a BERT: ``hidden_act`` "gelu", absolute positions). The
graph, written with the ``onnx`` package's helper API (no torch, no export),
is the computation of ``tests/text/bert_ref.py``, Hugging Face ``BertModel``
without its pooler:

    x = LayerNorm(word[input_ids] + position[0..T) + token_type[token_type_ids])
    6 times (post-LayerNorm):
        a = softmax(q k^T / sqrt(32) + mask) v          12 heads of 32
        x = LayerNorm(x + dense(a))
        x = LayerNorm(x + dense(gelu(dense(x))))        gelu: 0.5 x (1 + Erf(x / sqrt 2))
    last_hidden_state = x

- inputs ``input_ids``, ``attention_mask``, ``token_type_ids``: INT64
  [batch, sequence]; output ``last_hidden_state``: FP32 [batch, sequence,
  384]. Mean pooling and normalization are the server's, not the graph's.
- mask: (1 - attention_mask) times float32's most negative number, added to
  every head's scores (transformers' additive mask), so padding gets no
  attention.
- opset 17 (``LayerNormalization``, epsilon ``layer_norm_eps``), IR version
  10, as the int8 graph in models/minilm; ONNX Runtime 1.31.1 runs it.
- intermediate shapes are stored (ONNX shape inference), which ONNX Runtime
  needs to fuse residual + LayerNorm into SkipLayerNormalization.
- weights are initializers (float32, ~90 MB): the embeddings and LayerNorms
  under their Hugging Face names (so ``embeddings.position_embeddings.weight``
  [512, 384] tells a server the sequence limit, 512), each linear layer's
  weight transposed to [in, out] as ``<name>.weight_t`` for ``MatMul``. The
  pooler and ``embeddings.position_ids`` are not used.

Deterministic: the same weights and the same ``onnx`` version give the same
bytes. Prints one line: the file, its size, nodes and initializers.
"""

import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

OPSET = [helper.make_opsetid("", 17)]
IR_VERSION = 10


class Builder:
    """Nodes and initializers, named as they are added."""

    def __init__(self, weights: dict) -> None:
        self.weights = weights
        self.nodes: list = []
        self.inits: list = []
        self.used: set = set()

    def node(self, op: str, inputs: list, name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def i64(self, name: str, values: list) -> str:
        return self.init(name, np.array(values, dtype=np.int64))

    def f32(self, name: str, value: float) -> str:
        return self.init(name, np.array(value, dtype=np.float32))

    def weight(self, name: str) -> str:
        """An fp32 tensor of the safetensors file, under its own name."""
        self.used.add(name)
        return self.init(name, self.weights[name].astype(np.float32))

    def dense(self, x: str, name: str) -> str:
        """x @ W^T + b, W as stored ([out, in])."""
        self.used.update((name + ".weight", name + ".bias"))
        w = self.init(name + ".weight_t", self.weights[name + ".weight"].astype(np.float32).T)
        b = self.init(name + ".bias", self.weights[name + ".bias"].astype(np.float32))
        return self.node("Add", [self.node("MatMul", [x, w], name + "/matmul"), b], name + "/out")

    def layer_norm(self, x: str, name: str, eps: float) -> str:
        w, b = self.weight(name + ".weight"), self.weight(name + ".bias")
        return self.node("LayerNormalization", [x, w, b], name + "/out", axis=-1, epsilon=eps)


def build(weights: dict, cfg: dict) -> onnx.ModelProto:
    if cfg.get("hidden_act") != "gelu":
        raise SystemExit(f"hidden_act {cfg.get('hidden_act')!r}: only 'gelu' (the erf GELU) is written here")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise SystemExit(f"position_embedding_type {cfg['position_embedding_type']!r}")
    hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    layers, eps = int(cfg["num_hidden_layers"]), float(cfg["layer_norm_eps"])
    head_dim = hidden // heads
    assert head_dim * heads == hidden, cfg
    g = Builder(weights)
    i64, f32 = g.i64, g.f32

    # Embeddings: word[ids] + position[0..T) + token_type[type ids], LayerNorm.
    word = g.node("Gather", [g.weight("embeddings.word_embeddings.weight"), "input_ids"], "embeddings/word")
    seq_len = g.node("Shape", ["input_ids"], "embeddings/sequence", start=1, end=2)
    zero = i64("const.zero", [0])
    pos = g.node(
        "Slice", [g.weight("embeddings.position_embeddings.weight"), zero, seq_len, zero], "embeddings/position"
    )
    types = g.node(
        "Gather", [g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids"], "embeddings/token_type"
    )
    x = g.node("Add", [g.node("Add", [word, pos], "embeddings/word_position"), types], "embeddings/sum")
    x = g.layer_norm(x, "embeddings.LayerNorm", eps)

    # Additive mask [batch, 1, 1, sequence]: 0 on tokens, float32's minimum on padding.
    mask = g.node("Cast", ["attention_mask"], "mask/float", to=TensorProto.FLOAT)
    mask = g.node("Sub", [f32("const.one", 1.0), mask], "mask/inverted")
    mask = g.node("Mul", [mask, f32("const.float_min", np.finfo(np.float32).min)], "mask/scaled")
    mask = g.node("Unsqueeze", [mask, i64("const.axes_1_2", [1, 2])], "mask/bias")

    split_heads = i64("const.shape_heads", [0, 0, heads, head_dim])  # [B, T, H, D]
    merge_heads = i64("const.shape_hidden", [0, 0, hidden])
    scale = f32("const.scale", 1.0 / math.sqrt(head_dim))
    sqrt2 = f32("const.sqrt2", math.sqrt(2.0))
    half = f32("const.half", 0.5)
    one = "const.one"

    for i in range(layers):
        p = f"encoder.layer.{i}."

        def heads_of(t: str, what: str, perm: list) -> str:
            r = g.node("Reshape", [t, split_heads], p + f"attention/{what}_split")
            return g.node("Transpose", [r], p + f"attention/{what}_heads", perm=perm)

        q = heads_of(g.dense(x, p + "attention.self.query"), "q", [0, 2, 1, 3])  # [B, H, T, D]
        kt = heads_of(g.dense(x, p + "attention.self.key"), "k", [0, 2, 3, 1])  # [B, H, D, T]
        v = heads_of(g.dense(x, p + "attention.self.value"), "v", [0, 2, 1, 3])
        scores = g.node("MatMul", [q, kt], p + "attention/scores")
        scores = g.node("Mul", [scores, scale], p + "attention/scaled")
        scores = g.node("Add", [scores, mask], p + "attention/masked")
        probs = g.node("Softmax", [scores], p + "attention/probs", axis=-1)
        ctx = g.node("MatMul", [probs, v], p + "attention/context")
        ctx = g.node("Transpose", [ctx], p + "attention/context_t", perm=[0, 2, 1, 3])
        ctx = g.node("Reshape", [ctx, merge_heads], p + "attention/context_merged")
        a = g.dense(ctx, p + "attention.output.dense")
        x = g.layer_norm(g.node("Add", [x, a], p + "attention/residual"), p + "attention.output.LayerNorm", eps)
        # The exact GELU, as PyTorch exports it: x * 0.5 * (1 + erf(x / sqrt 2)).
        h = g.dense(x, p + "intermediate.dense")
        e = g.node("Erf", [g.node("Div", [h, sqrt2], p + "gelu/div")], p + "gelu/erf")
        e = g.node("Add", [e, one], p + "gelu/add")
        h = g.node("Mul", [g.node("Mul", [h, e], p + "gelu/mul"), half], p + "gelu/out")
        o = g.dense(h, p + "output.dense")
        x = g.layer_norm(g.node("Add", [x, o], p + "output/residual"), p + "output.LayerNorm", eps)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state"))
    unused = sorted(set(weights) - g.used - {"embeddings.position_ids"})
    if unused and unused != ["pooler.dense.bias", "pooler.dense.weight"]:
        raise SystemExit(f"weights not used: {unused}")

    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2-fp32",
        inputs,
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="conduit make_minilm_fp32.py")
    model.ir_version = IR_VERSION
    # The shapes of intermediate values (value_info): with them ONNX Runtime
    # fuses each residual Add and LayerNormalization into
    # SkipLayerNormalization, as it does for the int8 export.
    return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    weights_dir, out = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(weights_dir, "config.json")))
    weights = load_file(os.path.join(weights_dir, "model.safetensors"))
    model = build(weights, cfg)
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    onnx.save(model, out + ".part")
    os.replace(out + ".part", out)
    print(
        f"make_minilm_fp32: {out}: {os.path.getsize(out)} bytes, "
        f"{len(model.graph.node)} nodes, {len(model.graph.initializer)} initializers"
    )


if __name__ == "__main__":
    main()
