#!/usr/bin/env python3
"""Pools the rounds of several run.sh runs: per scenario and mode, the median
over every round of Conduit's CPU per request divided by the lowest peer's in
the same round, and in how many rounds Conduit was at or below every peer.

    python3 benches/load/pool_rounds.py /tmp/conduit-load.AAAA /tmp/conduit-load.BBBB ...

Each argument is a directory run.sh named at its end (it reads results.tsv).
A round counts only if Conduit and at least one peer have a CPU figure in it.
Prints a markdown table; asserts nothing.
"""
import sys
from statistics import median

# results.tsv columns (run.sh, measure()): server, scenario, mode, req/s,
# p50, p99, CPU µs/req, RSS MiB, requests, errors, 3 × cores, repetition,
# server CPU per wrk CPU.
SERVER, SCENARIO, MODE, CPU, REP = 0, 1, 2, 6, 13


def main(dirs):
    pooled = {}
    for d in dirs:
        rounds = {}
        with open(f"{d}/results.tsv") as f:
            for line in f:
                col = line.rstrip("\n").split("\t")
                if len(col) <= REP:
                    continue
                try:
                    cpu = float(col[CPU])
                except ValueError:
                    continue
                key = (col[SCENARIO], col[MODE], col[REP])
                rounds.setdefault(key, {})[col[SERVER]] = cpu
        for (scen, mode, _), cpus in rounds.items():
            conduit = cpus.pop("conduit", None)
            if conduit is None or not cpus:
                continue
            pooled.setdefault((scen, mode), []).append(conduit / min(cpus.values()))
    if not pooled:
        print("no rounds with Conduit and a peer")
        return
    print(f"Pooled over {len(dirs)} run(s): Conduit's CPU/req over the lowest peer's in the same round\n")
    print("| scenario | mode | rounds | median ratio | Conduit ≤ peers |")
    print("|---|---|---|---|---|")
    for (scen, mode), ratios in sorted(pooled.items()):
        below = sum(r <= 1 for r in ratios)
        print(f"| {scen} | {mode} | {len(ratios)} | {median(ratios):.3f} | {below} of {len(ratios)} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
