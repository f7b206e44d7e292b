"""all-MiniLM-L6-v2 in fp32, in numpy: what sentence-transformers computes.

A BERT encoder written out in numpy (no torch), run on the fp32 weights of
sentence-transformers/all-MiniLM-L6-v2 (``model.safetensors`` + ``config.json``,
which ``scripts/fetch-text-models --fp32`` extracts into
``.cache/text-models/minilm-fp32/``), followed by the model's two
sentence-transformers modules: mean pooling over the attention mask
(``1_Pooling/config.json``: pooling_mode_mean_tokens) and L2 normalization
(``2_Normalize``). Per layer, as Hugging Face ``BertModel`` (post-LayerNorm,
absolute positions, ``layer_norm_eps`` from config.json):

    x = LayerNorm(word[ids] + position[0..T) + token_type[0])
    6 times:
        a = softmax(q k^T / sqrt(32) + mask) v        12 heads of 32
        x = LayerNorm(x + dense(a))
        x = LayerNorm(x + dense(gelu(dense(x))))      gelu: exact, erf form
    embedding = normalize(sum(x * mask) / sum(mask))

``hidden_act`` "gelu" is the exact GELU, 0.5 x (1 + erf(x / sqrt 2)), not the
tanh approximation ("gelu_new"); numpy has no erf, so ``erf`` below is a
rational approximation with an absolute error under 1.5e-7 (Abramowitz and
Stegun 7.1.26), about float32's resolution at 1. The BERT pooler (a dense
layer on [CLS]) is not used by sentence-transformers and not computed.

Tokenization is the caller's: ``embed_ids`` takes token-id sequences as the
model takes them ([CLS] ... [SEP], at most 256 of them). Sequences are run
in batches of similar length, padded to the longest with the padding masked
out of attention and pooling, as sentence-transformers does; the arithmetic
is float32 like torch's on CPU (``dtype=np.float64`` for a check of that).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from safetensors.numpy import load_file

SUPPORTED_ACT = "gelu"  # Hugging Face's name for the exact (erf) GELU


def erf(x: np.ndarray) -> np.ndarray:
    """erf(x), |error| < 1.5e-7 (Abramowitz and Stegun 7.1.26), in x's dtype."""
    a1, a2, a3, a4, a5 = 0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429
    p = 0.3275911
    ax = np.abs(x)
    t = ax * p
    t += 1.0
    np.reciprocal(t, out=t)
    y = t * a5
    for a in (a4, a3, a2, a1):
        y += a
        y *= t
    np.multiply(ax, ax, out=ax)
    np.negative(ax, out=ax)
    np.exp(ax, out=ax)
    y *= ax
    np.subtract(1.0, y, out=y)
    return np.copysign(y, x, out=y)


def gelu(x: np.ndarray, rows: int = 64) -> np.ndarray:
    """The exact GELU BERT uses (``hidden_act`` "gelu"): 0.5 x (1 + erf(x / sqrt 2)).

    In blocks of ``rows`` rows of the last axis, which stay in cache.
    """
    flat = x.reshape(-1, x.shape[-1])
    out = np.empty_like(flat)
    c = x.dtype.type(1.0 / math.sqrt(2.0))
    for i in range(0, flat.shape[0], rows):
        v = flat[i : i + rows]
        e = erf(v * c)
        e += 1.0
        e *= v
        e *= 0.5
        out[i : i + rows] = e
    return out.reshape(x.shape)


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)  # biased, as torch's LayerNorm
    return (x - mu) / np.sqrt(var + eps) * w + b


class BertRef:
    """The fp32 sentence-transformers all-MiniLM-L6-v2, forward pass in numpy."""

    def __init__(
        self, model_dir: Path | str, dtype: type = np.float32, weights: dict[str, np.ndarray] | None = None
    ) -> None:
        """``model_dir`` holds config.json and (unless ``weights`` is given) model.safetensors."""
        model_dir = Path(model_dir)
        cfg = json.loads((model_dir / "config.json").read_text())
        if cfg.get("hidden_act") != SUPPORTED_ACT:
            act = cfg.get("hidden_act")
            raise ValueError(f"hidden_act {act!r}: only {SUPPORTED_ACT!r} (the erf GELU) is written here")
        if cfg.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"position_embedding_type {cfg['position_embedding_type']!r}")
        self.dtype = dtype
        self.hidden = int(cfg["hidden_size"])
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg["layer_norm_eps"])
        self.max_positions = int(cfg["max_position_embeddings"])
        self.head_dim = self.hidden // self.heads
        assert self.head_dim * self.heads == self.hidden, cfg
        if weights is None:
            weights = load_file(str(model_dir / "model.safetensors"))
        w = {k: v.astype(dtype) for k, v in weights.items() if v.dtype.kind == "f"}
        self.w = w
        # Linear layers store [out, in]; keep them transposed for x @ W.
        self.lin: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            for name in (
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "intermediate.dense",
                "output.dense",
            ):
                self.lin[p + name] = (np.ascontiguousarray(w[p + name + ".weight"].T), w[p + name + ".bias"])
        assert w["encoder.layer.0.intermediate.dense.weight"].shape == (cfg["intermediate_size"], self.hidden)

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        wt, b = self.lin[name]
        return x @ wt + b

    def _ln(self, x: np.ndarray, name: str) -> np.ndarray:
        return layer_norm(x, self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def last_hidden_state(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """[B, T] token ids and attention mask (1 = token, 0 = padding) -> [B, T, hidden]."""
        B, T = ids.shape
        if T > self.max_positions:
            raise ValueError(f"{T} tokens, the model has {self.max_positions} positions")
        w = self.w
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][:T][None, :, :]
        x = x + w["embeddings.token_type_embeddings.weight"][0]  # token_type_ids all 0
        x = self._ln(x, "embeddings.LayerNorm")
        # Additive mask as transformers': the dtype's most negative number on padding.
        bias = ((1.0 - mask.astype(self.dtype)) * np.finfo(self.dtype).min)[:, None, None, :]
        scale = self.dtype(1.0 / math.sqrt(self.head_dim))
        H, D = self.heads, self.head_dim
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def heads(t: np.ndarray) -> np.ndarray:  # [B, T, H*D] -> [B, H, T, D]
                return t.reshape(B, T, H, D).transpose(0, 2, 1, 3)

            q = heads(self._dense(x, p + "attention.self.query"))
            k = heads(self._dense(x, p + "attention.self.key"))
            v = heads(self._dense(x, p + "attention.self.value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = scores - scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(B, T, H * D)
            x = self._ln(x + self._dense(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = gelu(self._dense(x, p + "intermediate.dense"))
            x = self._ln(x + self._dense(h, p + "output.dense"), p + "output.LayerNorm")
        return x

    def embed_ids(
        self, seqs: Sequence[Sequence[int]], normalize: bool = True, max_batch_tokens: int = 2048
    ) -> np.ndarray:
        """[len(seqs), hidden] float64: mean pooling over each sequence, L2-normalized.

        Sequences are sorted by length and run in batches of similar lengths
        (the longest at most 1.25 times the shortest, plus 8) of at most
        ``max_batch_tokens`` padded tokens, so little is computed on padding.
        """
        out = np.zeros((len(seqs), self.hidden), dtype=np.float64)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        start = 0
        while start < len(order):
            shortest = len(seqs[order[start]])
            end = start + 1
            while end < len(order):
                n = len(seqs[order[end]])  # the batch's longest if taken
                if n > 1.25 * shortest + 8 or (end + 1 - start) * n > max_batch_tokens:
                    break
                end += 1
            idx = order[start:end]
            T = max(len(seqs[i]) for i in idx)
            ids = np.zeros((len(idx), T), dtype=np.int64)  # [PAD] = 0
            mask = np.zeros((len(idx), T), dtype=np.int64)
            for r, i in enumerate(idx):
                ids[r, : len(seqs[i])] = seqs[i]
                mask[r, : len(seqs[i])] = 1
            hidden = self.last_hidden_state(ids, mask)
            m = mask[:, :, None].astype(self.dtype)
            # sentence-transformers' Pooling: sum over the mask / clamp(count, 1e-9).
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out[idx] = pooled.astype(np.float64)
            start = end
        if normalize:
            # 2_Normalize: F.normalize(p=2), eps 1e-12.
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


def weights_from_int8_graph(
    model_onnx: Path | str, fp32: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The weights an int8 ONNX export of this model computes with, named as ``fp32``'s.

    The int8 graph stores each linear layer's weight and the word and position
    embeddings as int8 ``<name>_q`` times a float ``<name>_scale`` (per output
    channel, per row), dequantized in the graph (Cast, Mul) before a float
    MatMul or Gather; everything else is float. Each int8 tensor is matched to
    the fp32 tensor it is closest to (it must be close to exactly one);
    float tensors ``inner.<name>`` must equal ``fp32[<name>]``. Returns the
    weights (``fp32`` with the dequantized tensors in place) and the relative
    error ||dequantized - fp32|| / ||fp32|| of each replaced tensor. Needs the
    ``onnx`` package.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_onnx)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    out = dict(fp32)
    errors: dict[str, float] = {}
    for name, arr in init.items():
        if arr.dtype.kind == "f" and name.startswith("inner.") and name[len("inner.") :] in fp32:
            ref = fp32[name[len("inner.") :]]
            if not np.array_equal(arr, ref):
                raise ValueError(f"{name} differs from the fp32 weights")
    for name, q in init.items():
        if q.dtype != np.int8:
            continue
        if not name.endswith("_q") or name[:-2] + "_scale" not in init:
            raise ValueError(f"int8 {name} without a {name[:-2]}_scale")
        deq = q.astype(np.float32) * init[name[:-2] + "_scale"].astype(np.float32)
        scored = []
        for key, ref in fp32.items():
            if ref.dtype.kind != "f" or ref.ndim != 2:
                continue
            # Embeddings are stored as they are; linear weights ([out, in] in
            # the safetensors) as [in, out].
            cand = ref if key.startswith("embeddings.") else ref.T
            if cand.shape == deq.shape:
                scored.append((float(np.linalg.norm(deq - cand) / np.linalg.norm(cand)), key))
        scored.sort()
        if not scored or scored[0][0] > 0.05 or (len(scored) > 1 and scored[1][0] < 0.5):
            raise ValueError(f"{name}: no unambiguous fp32 tensor close to it: {scored[:2]}")
        err, key = scored[0]
        if key in errors:
            raise ValueError(f"{name} and another int8 tensor both match {key}")
        errors[key] = err
        out[key] = deq if key.startswith("embeddings.") else np.ascontiguousarray(deq.T)
    return out, errors
