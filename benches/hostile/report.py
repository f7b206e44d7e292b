#!/usr/bin/env python3
"""Rows of the hostile-input run, and the table and verdicts made from them.

    python3 report.py row ROWS.jsonl key=value ...   # append one row
    python3 report.py render ROWS.jsonl              # markdown to stdout

In `row`, a value is read as JSON when it parses (numbers, true, {...}) and
as a string otherwise; `key=@FILE` takes the last `RESULT {json}` line of
FILE (what every helper here prints last), or null when there is none.

The acceptance targets of issue #13 live here, in `verdict`, and nowhere
else, so the script and the docs cannot disagree about them.
"""

import json
import math
import sys

# Issue #13: legit /json p99 under an attack within this many times its
# unloaded p99, and under this many milliseconds.
LATENCY_FACTOR = 10
LATENCY_CAP_MS = 100
# Issue #13 / SECURITY.md I8: RSS after one rejected request within this
# many times the request's body of where it started.
RSS_BODY_FACTOR = 3


def last_result(path: str):
    try:
        with open(path, errors="replace") as f:
            lines = [ln for ln in f if ln.startswith("RESULT ")]
    except OSError:
        return None
    return json.loads(lines[-1][len("RESULT "):]) if lines else None


def cmd_row(path: str, args: list) -> None:
    row = {}
    for a in args:
        k, _, v = a.partition("=")
        if v.startswith("@"):
            row[k] = last_result(v[1:])
            continue
        try:
            row[k] = json.loads(v)
        except ValueError:
            row[k] = v
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def num(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def verdict(r: dict) -> tuple:
    """(target text, PASS/FAIL/n/a) for a row."""
    check = r.get("check")
    if check == "latency":
        lg, base = r.get("legit") or {}, num(r.get("base_p99"))
        p99 = num(lg.get("p99_ms"))
        target = f"p99 ≤ {LATENCY_FACTOR}× unloaded and < {LATENCY_CAP_MS} ms"
        if p99 is None or base is None:
            return target, "n/a"
        bound = min(LATENCY_FACTOR * base, LATENCY_CAP_MS)
        return target, "PASS" if p99 <= bound and p99 < LATENCY_CAP_MS else "FAIL"
    if check == "drain":
        lost = num(r.get("lost"))
        return "0 requests lost", "n/a" if lost is None else ("PASS" if lost == 0 else "FAIL")
    if check == "rss":
        b, a, body = num(r.get("rss_before")), num(r.get("rss_after")), num(r.get("body_bytes"))
        target = f"RSS after − before ≤ {RSS_BODY_FACTOR}× body"
        if None in (b, a, body):
            return target, "n/a"
        return target, "PASS" if (a - b) * 1024 <= RSS_BODY_FACTOR * body else "FAIL"
    if check == "session":
        ok = (r.get("extra") or {}).get("new_client_ok")
        return "new client gets a session (M18)", "n/a" if ok is None else ("PASS" if ok else "FAIL")
    return "—", "—"


def ms(x) -> str:
    x = num(x)
    if x is None:
        return "—"
    if math.isinf(x):
        return "∞"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def mib(kib) -> str:
    kib = num(kib)
    return "—" if kib is None else f"{kib / 1024:.0f}"


def render(path: str) -> None:
    rows = [json.loads(ln) for ln in open(path) if ln.strip()]
    print("| scenario | attack | legit /json p50 / p99 ms (unloaded p99) | legit ok / n, timeouts | "
          "requests lost | server RSS MiB before → after (peak) | fds before → after (peak) | target | result |")
    print("|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    for r in rows:
        lg = r.get("legit") or {}
        legit = "—"
        counts = "—"
        if lg:
            legit = f"{ms(lg.get('p50_ms'))} / {ms(lg.get('p99_ms'))} ({ms(r.get('base_p99'))})"
            counts = f"{lg.get('ok')} / {lg.get('n')}, {lg.get('timeout')}"
        lost = r.get("lost")
        if lost is None and lg:
            lost = lg.get("lost")
        rss = f"{mib(r.get('rss_before'))} → {mib(r.get('rss_after'))}"
        if num(r.get("rss_peak")) is not None:
            rss += f" ({mib(r.get('rss_peak'))})"
        fds = f"{r.get('fd_before', '—')} → {r.get('fd_after', '—')}"
        if num(r.get("fd_peak")) is not None:
            fds += f" ({r.get('fd_peak')})"
        target, v = verdict(r)
        if v in ("PASS", "FAIL"):
            verdicts.append((r.get("id"), target, v))
        print(f"| {r.get('scenario', '')} | {r.get('what', '')} | {legit} | {counts} | "
              f"{'—' if lost is None else lost} | {rss} | {fds} | {target} | {v} |")
    print()
    for rid, target, v in verdicts:
        print(f"- {v} `{rid}`: {target}")
    print()
    for r in rows:
        if r.get("note") or r.get("extra"):
            extra = json.dumps(r.get("extra"), ensure_ascii=False) if r.get("extra") else ""
            print(f"- `{r.get('id')}`: {r.get('note', '')} {extra}".rstrip())


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "row":
        cmd_row(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 3 and sys.argv[1] == "render":
        render(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
