#!/usr/bin/env python3
"""Deterministic texts and request bodies for the text embedding benchmark.

    make_texts.py OUT_DIR [--count N] [--seed S]

Writes, for each workload (`short`: 10-14 words, ~12; `passage`: 100-140
words in sentences, ~120):

    OUT_DIR/<workload>.texts.json     the N texts, a JSON array
    OUT_DIR/<workload>-<T>.jsonl      request bodies of T texts each, one per
                                      line: {"model":"minilm","input":...}
                                      (a string when T = 1, else an array);
                                      body k holds texts kT .. kT+T-1 (mod N)

for T in 1 and 32 (--per-request changes them). The same bodies go to every
server, so every server embeds the same texts in the same order. Words are
drawn with random.Random(seed) from a fixed list of common English words
(mostly one WordPiece token each, some split into two or three), so the
output is the same on every machine and Python 3 version. Prints one line
per workload: texts, mean words, mean characters.
"""

import argparse
import json
import os
import random

WORDS = """
the of and to in is that for it as was with be by on not he this are or his
from at which but have an they you were her she there been one all we their
has would when if so no will more can time people about some out them into
only other new could than first also after two then most over very years may
made between where many work these its great before being through well world
long our any state even much own city life way around while still should
system number water because government house school under day part since
during against country without another small large found later public high
early such each history three group name during service area place several
power river language national called often government important music based
around development family however second century different member building
world field system station business market energy research model network
computer student teacher garden kitchen window morning evening weather summer
winter autumn spring mountain valley forest ocean island bridge harbor train
engine doctor hospital library museum theater painting festival village market
language science history culture economy policy report season player captain
journey recipe coffee bread cheese orange silver golden quiet gentle rapid
careful bright ancient modern simple complex central northern southern western
eastern local global digital physical natural social personal public private
build grow learn teach measure improve explain describe follow discover travel
write read speak listen carry open close begin finish remember forget choose
decision question answer problem solution method result example reason
evidence experiment pattern structure surface distance temperature pressure
membrane protocol latency throughput embedding tokenizer inference benchmark
quickly slowly rarely usually always almost nearly perhaps together already
""".split()
WORDS = list(dict.fromkeys(WORDS))  # the list above repeats a few


def short_text(r: random.Random) -> str:
    n = r.randint(10, 14)
    words = [r.choice(WORDS) for _ in range(n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + r.choice([".", ".", ".", "?", "!"])


def passage(r: random.Random) -> str:
    target = r.randint(100, 140)
    sentences, count = [], 0
    while count < target:
        n = min(r.randint(8, 20), target - count)
        if target - count - n < 4:  # no tail of one to three words
            n = target - count
        words = [r.choice(WORDS) for _ in range(n)]
        words[0] = words[0].capitalize()
        if n > 9 and r.random() < 0.5:
            k = r.randint(3, n - 4)
            words[k] += ","
        sentences.append(" ".join(words) + ".")
        count += n
    return " ".join(sentences)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--per-request", default="1,32")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    per = sorted({int(x) for x in a.per_request.split(",") if x})
    for kind, make in (("short", short_text), ("passage", passage)):
        r = random.Random(f"{a.seed}-{kind}")
        texts = [make(r) for _ in range(a.count)]
        with open(os.path.join(a.out, f"{kind}.texts.json"), "w") as f:
            json.dump(texts, f)
        for t in per:
            with open(os.path.join(a.out, f"{kind}-{t}.jsonl"), "w") as f:
                for k in range(max(1, a.count // t)):
                    chunk = [texts[(k * t + j) % len(texts)] for j in range(t)]
                    inp = chunk[0] if t == 1 else chunk
                    f.write(json.dumps({"model": a.model, "input": inp}) + "\n")
        words = sum(len(x.split()) for x in texts) / len(texts)
        chars = sum(len(x) for x in texts) / len(texts)
        print(f"{kind}: {len(texts)} texts, {words:.1f} words, {chars:.0f} characters on average")


if __name__ == "__main__":
    main()
