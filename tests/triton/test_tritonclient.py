"""Interop: NVIDIA's official ``tritonclient[http]`` as a client of `conduit`.

A module-scoped `conduit serve --listen 127.0.0.1:0 --models <tmp repo>`
serves copies of ``tests/fixtures/models/{mlp,two_io}``; the tests drive its
KServe v2 / Triton HTTP API only through ``tritonclient.http`` and compare
every inference result with ``onnxruntime.InferenceSession`` run in-process on
the same model file and the same inputs (rtol 1e-4 for FP32, exact for INT64).

A second server, with ``CONDUIT_ML_MAX_INPUT_BYTES=65536``, is started only
for the request-size-limit test.

The binary comes from ``CONDUIT_BIN`` (default: ``target/debug/conduit`` in
the repository root); ONNX Runtime from ``ORT_DYLIB_PATH`` (default: the copy
``scripts/fetch-onnxruntime`` puts in ``.cache/onnxruntime``). Each server is
stopped with SIGTERM (then SIGKILL) at the end of the module.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from conduit_proc import REPO, ConduitProcess

ORT_VERSION = "1.31.1"
ORT_DYLIB = os.environ.get(
    "ORT_DYLIB_PATH", str(REPO / ".cache" / "onnxruntime" / f"libonnxruntime.so.{ORT_VERSION}")
)
FIXTURES = REPO / "tests" / "fixtures" / "models"
MODELS = ["mlp", "two_io"]


SMALL_LIMIT = 65536  # CONDUIT_ML_MAX_INPUT_BYTES for the size-limit server
RTOL = 1e-4
ATOL = 1e-6


# --------------------------------------------------------------------------
# server process
# --------------------------------------------------------------------------


class Server(ConduitProcess):
    """A `conduit serve` on 127.0.0.1:<ephemeral> over a temporary model repository."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        if not Path(ORT_DYLIB).exists():
            pytest.fail(f"ONNX Runtime not found at {ORT_DYLIB} (run scripts/fetch-onnxruntime)")
        self.repo = Path(tempfile.mkdtemp(prefix="conduit-triton-"))
        for name in MODELS:
            shutil.copytree(FIXTURES / name, self.repo / name)
        super().__init__(["--models", str(self.repo)], {"ORT_DYLIB_PATH": ORT_DYLIB, **(extra_env or {})})
        self.url = self.addr  # "127.0.0.1:PORT", no scheme: what tritonclient takes

    def client(self, **kwargs: Any) -> httpclient.InferenceServerClient:
        kwargs.setdefault("connection_timeout", 5.0)
        kwargs.setdefault("network_timeout", 10.0)
        return httpclient.InferenceServerClient(url=self.url, **kwargs)

    def await_models_ready(self, client: httpclient.InferenceServerClient, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(MODELS)
        while pending and time.monotonic() < deadline:
            try:
                pending = [m for m in pending if not client.is_model_ready(m)]
            except Exception:  # connection refused etc. while starting
                pass
            if pending:
                time.sleep(0.05)
        if pending:
            self.fail(f"models never became ready: {pending}")

    def fail(self, why: str) -> None:
        pytest.fail(why + "\n--- conduit log (last 50 lines) ---\n" + "".join(self.log[-50:]))

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.repo, ignore_errors=True)


def _serve(extra_env: dict[str, str] | None = None) -> Iterator[tuple[Server, httpclient.InferenceServerClient]]:
    server = Server(extra_env)
    client = server.client(concurrency=16)
    try:
        server.await_models_ready(client)
        yield server, client
    finally:
        client.close()
        server.stop()
        # pytest shows captured teardown output only for a failing test.
        print("--- conduit log (last 50 lines) ---")
        print("".join(server.log[-50:]))
        # A crash (not our SIGTERM) is a failure of its own.
        assert server.proc.returncode in (0, -signal.SIGTERM), f"conduit exited with {server.proc.returncode}"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Server, httpclient.InferenceServerClient]]:
    yield from _serve()


@pytest.fixture(scope="module")
def client(served: tuple[Server, httpclient.InferenceServerClient]) -> httpclient.InferenceServerClient:
    return served[1]


@pytest.fixture(scope="module")
def small_served() -> Iterator[tuple[Server, httpclient.InferenceServerClient]]:
    yield from _serve({"CONDUIT_ML_MAX_INPUT_BYTES": str(SMALL_LIMIT)})


# --------------------------------------------------------------------------
# reference: onnxruntime in-process
# --------------------------------------------------------------------------

_SESSIONS: dict[str, ort.InferenceSession] = {}


def reference(model: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if model not in _SESSIONS:
        _SESSIONS[model] = ort.InferenceSession(
            str(FIXTURES / model / "model.onnx"), providers=["CPUExecutionProvider"]
        )
    sess = _SESSIONS[model]
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


# Triton datatype of each input and output of the test models.
DTYPES = {
    "mlp": {"input": "FP32", "output": "FP32"},
    "two_io": {"ids": "INT64", "scale": "FP32", "sum": "INT64", "scaled": "FP32"},
}
OUTPUTS = {"mlp": ["output"], "two_io": ["sum", "scaled"]}


def make_feeds(model: str, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    if model == "mlp":
        return {"input": rng.standard_normal((batch, 16), dtype=np.float32)}
    if model == "two_io":
        return {
            "ids": rng.integers(-100_000, 100_000, size=(batch, 3), dtype=np.int64),
            "scale": rng.standard_normal((batch, 1), dtype=np.float32),
        }
    raise ValueError(model)


def make_inputs(feeds: dict[str, np.ndarray], model: str, binary: bool) -> list[httpclient.InferInput]:
    inputs = []
    for name, arr in feeds.items():
        inp = httpclient.InferInput(name, list(arr.shape), DTYPES[model][name])
        inp.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(inp)
    return inputs


def assert_matches(model: str, name: str, got: np.ndarray | None, want: np.ndarray) -> None:
    assert got is not None, f"{model}: output {name!r} missing from the response"
    assert got.shape == want.shape, f"{model}/{name}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{model}/{name}: dtype {got.dtype} != {want.dtype}"
    if np.issubdtype(want.dtype, np.integer):
        np.testing.assert_array_equal(got, want, err_msg=f"{model}/{name}")
    else:
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{model}/{name}")


# --------------------------------------------------------------------------
# health, metadata, config, statistics
# --------------------------------------------------------------------------


def test_server_live_ready_and_metadata(client: httpclient.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "conduit"
    assert isinstance(meta["version"], str) and meta["version"]
    assert "binary_tensor_data" in meta["extensions"]
    for model in MODELS:
        assert client.is_model_ready(model), model
        assert client.is_model_ready(model, model_version="1"), model
    assert not client.is_model_ready("no_such_model")


EXPECTED_METADATA = {
    "mlp": {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 16]}],
        "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 4]}],
    },
    "two_io": {
        "inputs": [
            {"name": "ids", "datatype": "INT64", "shape": [-1, 3]},
            {"name": "scale", "datatype": "FP32", "shape": [-1, 1]},
        ],
        "outputs": [
            {"name": "sum", "datatype": "INT64", "shape": [-1, 1]},
            {"name": "scaled", "datatype": "FP32", "shape": [-1, 3]},
        ],
    },
}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("version", ["", "1"])
def test_model_metadata(client: httpclient.InferenceServerClient, model: str, version: str) -> None:
    meta = client.get_model_metadata(model, model_version=version)
    assert meta["name"] == model
    assert "1" in meta["versions"]
    assert meta["platform"] == "onnxruntime_onnx"

    def by_name(tensors: list[dict[str, Any]]) -> dict[str, tuple[str, list[int]]]:
        return {t["name"]: (t["datatype"], t["shape"]) for t in tensors}

    assert by_name(meta["inputs"]) == by_name(EXPECTED_METADATA[model]["inputs"])
    assert by_name(meta["outputs"]) == by_name(EXPECTED_METADATA[model]["outputs"])


@pytest.mark.parametrize("model", MODELS)
def test_model_config(client: httpclient.InferenceServerClient, model: str) -> None:
    config = client.get_model_config(model)
    assert config["name"] == model
    assert config["max_batch_size"] == 32
    # With batching on, dims leave out the batch dimension (Triton's rule).
    want_in = {t["name"]: t["shape"][1:] for t in EXPECTED_METADATA[model]["inputs"]}
    want_out = {t["name"]: t["shape"][1:] for t in EXPECTED_METADATA[model]["outputs"]}
    assert {t["name"]: t["dims"] for t in config["input"]} == want_in
    assert {t["name"]: t["dims"] for t in config["output"]} == want_out
    types = {t["name"]: t["data_type"] for t in config["input"] + config["output"]}
    assert types == {name: "TYPE_" + dt for name, dt in DTYPES[model].items()}
    assert client.get_model_config(model, model_version="1")["name"] == model


def test_repository_index(client: httpclient.InferenceServerClient) -> None:
    index = client.get_model_repository_index()
    states = {(m["name"], m.get("version")): m.get("state") for m in index}
    for model in MODELS:
        assert states.get((model, "1")) == "READY", index


def _stats(client: httpclient.InferenceServerClient, model: str) -> dict[str, Any]:
    stats = client.get_inference_statistics(model_name=model)
    entries = [s for s in stats["model_stats"] if s["name"] == model]
    assert len(entries) == 1, stats
    return entries[0]


def test_inference_statistics(client: httpclient.InferenceServerClient) -> None:
    before = _stats(client, "mlp")
    rows = [1, 3, 2]
    for i, batch in enumerate(rows):
        feeds = make_feeds("mlp", batch, seed=100 + i)
        client.infer("mlp", make_inputs(feeds, "mlp", binary=True))
    after = _stats(client, "mlp")
    assert after["version"] == "1"
    ok_before = before["inference_stats"]["success"]["count"]
    ok_after = after["inference_stats"]["success"]["count"]
    assert ok_after - ok_before == len(rows), (before, after)
    # inference_count counts samples (rows of the batch), execution_count model runs.
    assert after["inference_count"] - before["inference_count"] == sum(rows), (before, after)
    executions = after["execution_count"] - before["execution_count"]
    assert 1 <= executions <= len(rows), (before, after)
    assert after["inference_stats"]["success"]["ns"] > before["inference_stats"]["success"]["ns"]
    assert after["last_inference"] >= before["last_inference"] and after["last_inference"] > 0

    # No model name: every model's statistics.
    everything = client.get_inference_statistics()
    assert {s["name"] for s in everything["model_stats"]} >= set(MODELS)


# --------------------------------------------------------------------------
# inference: results equal onnxruntime's
# --------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_matches_onnxruntime(
    client: httpclient.InferenceServerClient, model: str, batch: int, binary: bool
) -> None:
    feeds = make_feeds(model, batch, seed=batch * 10 + binary)
    outputs = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in OUTPUTS[model]]
    result = client.infer(model, make_inputs(feeds, model, binary), outputs=outputs, request_id=f"req-{batch}")
    response = result.get_response()
    assert response["model_name"] == model
    assert response.get("model_version") == "1"
    assert response.get("id") == f"req-{batch}"
    assert sorted(o["name"] for o in response["outputs"]) == sorted(OUTPUTS[model])
    for out in response["outputs"]:
        assert out["datatype"] == DTYPES[model][out["name"]]
        if binary:
            assert "data" not in out, out
            assert out["parameters"]["binary_data_size"] > 0
        else:
            assert "data" in out, out
    want = reference(model, feeds)
    for name in OUTPUTS[model]:
        assert_matches(model, name, result.as_numpy(name), want[name])


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_without_requested_outputs_returns_all(
    client: httpclient.InferenceServerClient, model: str, binary: bool
) -> None:
    # tritonclient sends no "outputs" and parameters.binary_data_output = true.
    feeds = make_feeds(model, 3, seed=7 + binary)
    result = client.infer(model, make_inputs(feeds, model, binary), model_version="1")
    assert sorted(o["name"] for o in result.get_response()["outputs"]) == sorted(OUTPUTS[model])
    want = reference(model, feeds)
    for name in OUTPUTS[model]:
        assert_matches(model, name, result.as_numpy(name), want[name])


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_mixed_binary_outputs(client: httpclient.InferenceServerClient, binary: bool) -> None:
    # One output binary, the other JSON; inputs one of each as well.
    feeds = make_feeds("two_io", 3, seed=21)
    ids = httpclient.InferInput("ids", [3, 3], "INT64")
    ids.set_data_from_numpy(feeds["ids"], binary_data=binary)
    scale = httpclient.InferInput("scale", [3, 1], "FP32")
    scale.set_data_from_numpy(feeds["scale"], binary_data=not binary)
    outputs = [
        httpclient.InferRequestedOutput("sum", binary_data=binary),
        httpclient.InferRequestedOutput("scaled", binary_data=not binary),
    ]
    result = client.infer("two_io", [ids, scale], outputs=outputs)
    want = reference("two_io", feeds)
    for name in OUTPUTS["two_io"]:
        assert_matches("two_io", name, result.as_numpy(name), want[name])


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_int64_exact_beyond_2_pow_53(client: httpclient.InferenceServerClient, binary: bool) -> None:
    # Values a double cannot hold exactly; sums stay within int64.
    ids = np.array([[2**60 + 1, 2**59 + 3, -(2**58) - 5], [2**53 + 1, 1, 0]], dtype=np.int64)
    scale = np.array([[1.5], [-0.25]], dtype=np.float32)
    feeds = {"ids": ids, "scale": scale}
    outputs = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in OUTPUTS["two_io"]]
    result = client.infer("two_io", make_inputs(feeds, "two_io", binary), outputs=outputs)
    want = reference("two_io", feeds)
    assert_matches("two_io", "sum", result.as_numpy("sum"), want["sum"])
    assert_matches("two_io", "scaled", result.as_numpy("scaled"), want["scaled"])


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


def _raises(fn: Any, *args: Any, **kwargs: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        fn(*args, **kwargs)
    return info.value


def test_unknown_model_is_404(client: httpclient.InferenceServerClient) -> None:
    feeds = make_feeds("mlp", 1, seed=1)
    e = _raises(client.infer, "no_such_model", make_inputs(feeds, "mlp", binary=False))
    assert e.status() == "404", str(e)
    assert "no_such_model" in e.message(), str(e)
    e = _raises(client.get_model_metadata, "no_such_model")
    assert e.status() == "404", str(e)
    assert "no_such_model" in e.message(), str(e)
    e = _raises(client.get_model_config, "no_such_model")
    assert e.status() == "404", str(e)


def test_unknown_version_is_404(client: httpclient.InferenceServerClient) -> None:
    feeds = make_feeds("mlp", 1, seed=1)
    e = _raises(client.infer, "mlp", make_inputs(feeds, "mlp", binary=True), model_version="7")
    assert e.status() == "404", str(e)
    e = _raises(client.get_model_metadata, "mlp", model_version="7")
    assert e.status() == "404", str(e)
    assert not client.is_model_ready("mlp", model_version="7")


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_wrong_shape_is_400(client: httpclient.InferenceServerClient, binary: bool) -> None:
    data = np.zeros((2, 15), dtype=np.float32)
    inp = httpclient.InferInput("input", [2, 15], "FP32")
    inp.set_data_from_numpy(data, binary_data=binary)
    e = _raises(client.infer, "mlp", [inp])
    assert e.status() == "400", str(e)
    assert "input" in e.message() and "shape" in e.message().lower(), str(e)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_wrong_dtype_is_400(client: httpclient.InferenceServerClient, binary: bool) -> None:
    data = np.zeros((2, 16), dtype=np.float64)
    inp = httpclient.InferInput("input", [2, 16], "FP64")
    inp.set_data_from_numpy(data, binary_data=binary)
    e = _raises(client.infer, "mlp", [inp])
    assert e.status() == "400", str(e)
    assert "FP64" in e.message() and "FP32" in e.message(), str(e)


def test_unknown_input_is_400(client: httpclient.InferenceServerClient) -> None:
    feeds = make_feeds("mlp", 1, seed=3)
    inp = httpclient.InferInput("nope", [1, 16], "FP32")
    inp.set_data_from_numpy(feeds["input"], binary_data=False)
    e = _raises(client.infer, "mlp", [inp])
    assert e.status() == "400", str(e)
    assert "nope" in e.message(), str(e)


def test_unknown_requested_output_is_400(client: httpclient.InferenceServerClient) -> None:
    feeds = make_feeds("mlp", 1, seed=4)
    outputs = [httpclient.InferRequestedOutput("nope", binary_data=True)]
    e = _raises(client.infer, "mlp", make_inputs(feeds, "mlp", binary=True), outputs=outputs)
    assert e.status() == "400", str(e)
    assert "nope" in e.message(), str(e)


def test_input_over_size_limit_is_413(
    small_served: tuple[Server, httpclient.InferenceServerClient],
) -> None:
    server, small = small_served
    rows = 2 * SMALL_LIMIT // (16 * 4)  # FP32 [rows, 16]: twice the limit in binary data
    data = np.ones((rows, 16), dtype=np.float32)
    inp = httpclient.InferInput("input", [rows, 16], "FP32")
    inp.set_data_from_numpy(data, binary_data=True)
    # conduit answers 413 from the Content-Length alone, before reading the
    # body, then closes; tritonclient has sent the whole body by then and
    # reads the response, so this is an InferenceServerException, not a
    # connection error.
    e = _raises(small.infer, "mlp", [inp])
    assert e.status() == "413", str(e)
    # Like every other error of the v2 API the body must be {"error": "..."}:
    # tritonclient reports a body it cannot decode as JSON as a client-side
    # decoding failure, not as the server's message.
    assert not e.message().startswith("an exception occurred in the client"), str(e)
    assert "too large" in e.message(), str(e)
    # The server is still fine afterwards, and a request under the limit works.
    feeds = make_feeds("mlp", 2, seed=5)
    result = small.infer("mlp", make_inputs(feeds, "mlp", binary=True))
    assert_matches("mlp", "output", result.as_numpy("output"), reference("mlp", feeds)["output"])
    assert server.proc.poll() is None


# --------------------------------------------------------------------------
# concurrency
# --------------------------------------------------------------------------


def test_concurrent_async_infer(client: httpclient.InferenceServerClient) -> None:
    n = 64
    rng = np.random.default_rng(2024)
    rows = rng.standard_normal((n, 16), dtype=np.float32)
    pending = []
    for i in range(n):
        inp = httpclient.InferInput("input", [1, 16], "FP32")
        inp.set_data_from_numpy(rows[i : i + 1], binary_data=bool(i % 2))
        out = httpclient.InferRequestedOutput("output", binary_data=bool(i % 3))
        pending.append(client.async_infer("mlp", [inp], outputs=[out], request_id=str(i)))
    want = reference("mlp", {"input": rows})["output"]
    for i, req in enumerate(pending):
        result = req.get_result(block=True, timeout=20)
        assert result.get_response().get("id") == str(i)
        assert_matches("mlp", "output", result.as_numpy("output"), want[i : i + 1])


def test_concurrent_threads_two_io(served: tuple[Server, httpclient.InferenceServerClient]) -> None:
    # One client per thread (the gevent-based client is not thread-safe).
    server, _ = served
    n_threads, per_thread = 8, 8
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            with server.client() as c:
                for j in range(per_thread):
                    feeds = make_feeds("two_io", 1 + (j % 3), seed=1000 + t * per_thread + j)
                    binary = bool((t + j) % 2)
                    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in OUTPUTS["two_io"]]
                    result = c.infer("two_io", make_inputs(feeds, "two_io", binary), outputs=outputs)
                    want = reference_threadsafe("two_io", feeds)
                    for name in OUTPUTS["two_io"]:
                        assert_matches("two_io", name, result.as_numpy(name), want[name])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "worker threads hung"
    assert not errors, errors[0]


_REF_LOCK = threading.Lock()


def reference_threadsafe(model: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with _REF_LOCK:
        return reference(model, feeds)


# --------------------------------------------------------------------------
# text models: a BYTES input of strings, the `embedding` output (issue #14)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True])
def test_a_text_model_takes_bytes_and_gives_embeddings(binary: bool) -> None:
    """models/minilm (scripts/fetch-text-models): one BYTES input of texts;
    the answer is FP32 [n, 384], equal to the server's /v1/embeddings."""
    import json
    import urllib.request

    proc = ConduitProcess(["--models", str(REPO / "models")], {"ORT_DYLIB_PATH": ORT_DYLIB})
    try:
        client = httpclient.InferenceServerClient(url=proc.addr, connection_timeout=5.0, network_timeout=30.0)
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.is_model_ready("minilm"):
                    break
            except Exception:
                pass
            assert time.monotonic() < deadline, "minilm did not load:\n" + "".join(proc.log)
            time.sleep(0.1)
        texts = ["hello world", "Triton clients send text as BYTES tensors.", "日本語 🎉"]
        inp = httpclient.InferInput("text", [len(texts)], "BYTES")
        inp.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object), binary_data=binary)
        out = httpclient.InferRequestedOutput("embedding", binary_data=binary)
        got = client.infer("minilm", [inp], outputs=[out]).as_numpy("embedding")
        assert got.shape == (3, 384) and got.dtype == np.float32
        body = json.dumps({"model": "minilm", "input": texts}).encode()
        req = urllib.request.Request(
            f"http://{proc.addr}/v1/embeddings", data=body, headers={"content-type": "application/json"}
        )
        want = np.array([d["embedding"] for d in json.load(urllib.request.urlopen(req))["data"]], dtype=np.float32)
        cos = (got * want).sum(axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
        assert (cos >= 0.9999).all(), cos
        client.close()
    finally:
        proc.stop()
