#!/usr/bin/env python3
"""The in-process ceiling of the text embedding benchmark: Python
`tokenizers` + `onnxruntime` on the same tokenizer.json and model.onnx as
the servers, no HTTP, one thread of Python calling them back to back.

    ceiling.py MODEL_DIR TEXTS_JSON THREADS DURATION_S WARMUP_S BATCH...

Per batch size: batches of BATCH consecutive texts of TEXTS_JSON (cycling)
are tokenized (`encode_batch`, truncation at the model's max_seq_length,
padded to the batch's longest text), run by one InferenceSession
(`intra_op_num_threads` = THREADS, inter-op 1, spinning off as in Conduit's
sessions, default graph optimizations), mean-pooled over the attention mask
and L2-normalized: what a server must do per text, nothing else. Prints one
JSON line per batch size: texts/s, p50/p99 per batch in µs, mean real and
padded tokens per text, and the process's CPU seconds per 1,000 texts.
"""

import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def main() -> None:
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    model_dir, texts_file = sys.argv[1], sys.argv[2]
    threads, duration, warmup = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    batches = [int(x) for x in sys.argv[6:]]
    texts = json.load(open(texts_file))
    max_len = 256
    cfg = os.path.join(model_dir, "sentence_bert_config.json")
    if os.path.exists(cfg):
        max_len = json.load(open(cfg)).get("max_seq_length", max_len)

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    pad = tok.padding or {}
    tok.no_truncation()
    tok.enable_truncation(max_len)
    tok.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    sess = ort.InferenceSession(
        os.path.join(model_dir, "model.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in sess.get_inputs()]
    out_name = next(
        (o.name for o in sess.get_outputs() if o.name == "last_hidden_state"),
        sess.get_outputs()[0].name,
    )

    def embed(chunk: list) -> tuple:
        encs = tok.encode_batch(chunk)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        feed = {}
        for n in names:
            if n == "input_ids":
                feed[n] = ids
            elif n == "attention_mask":
                feed[n] = mask
            else:
                feed[n] = np.array([e.type_ids for e in encs], dtype=np.int64)
        hidden = sess.run([out_name], feed)[0]
        m = mask[:, :, None].astype(np.float32)
        v = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return v, int(mask.sum()), ids.size

    for b in batches:
        at = 0
        t_end = time.perf_counter() + warmup
        while time.perf_counter() < t_end:
            embed([texts[(at + j) % len(texts)] for j in range(b)])
            at += b
        lat, n, real, padded = [], 0, 0, 0
        c0 = time.process_time()
        t0 = time.perf_counter()
        t_end = t0 + duration
        while True:
            s = time.perf_counter()
            if s >= t_end:
                break
            _, r, p = embed([texts[(at + j) % len(texts)] for j in range(b)])
            lat.append(time.perf_counter() - s)
            at += b
            n += b
            real += r
            padded += p
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        lat.sort()

        def pct(p: float) -> int:
            return int(lat[min(len(lat) - 1, int(len(lat) * p))] * 1e6)

        print(
            json.dumps(
                {
                    "batch": b,
                    "threads": threads,
                    "texts_per_s": round(n / wall, 1),
                    "p50_us": pct(0.5),
                    "p99_us": pct(0.99),
                    "tokens_per_text": round(real / n, 1),
                    "padded_per_text": round(padded / n, 1),
                    "cpu_ms_per_1k": round(cpu / n * 1e6, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
