"""The conduit binary as a child process, for the Python interop suites
(tests/interop, tests/triton): `conduit serve --listen 127.0.0.1:0
--log-format json ...`, its address read from the `conduit listening` log
line, stderr drained and kept for failure messages, stopped with SIGTERM
(then SIGKILL).

The binary comes from ``CONDUIT_BIN`` (default: ``target/debug/conduit`` in
the repository root); the suites' run.sh scripts set it.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONDUIT_BIN = Path(os.environ.get("CONDUIT_BIN", REPO / "target" / "debug" / "conduit"))
if not CONDUIT_BIN.is_absolute():
    CONDUIT_BIN = REPO / CONDUIT_BIN

# conduit treats every CONDUIT_* variable as a config key and refuses to
# start on an unknown one, so CONDUIT_BIN must not reach the child.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "CONDUIT_BIN"}


class ConduitProcess:
    """`conduit serve` on 127.0.0.1:<ephemeral>; ``addr`` is "127.0.0.1:PORT"."""

    def __init__(self, args: list[str], extra_env: dict[str, str] | None = None) -> None:
        if not CONDUIT_BIN.exists():
            pytest.fail(f"conduit binary not found at {CONDUIT_BIN} (build it or set CONDUIT_BIN)")
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [str(CONDUIT_BIN), "serve", "--listen", "127.0.0.1:0", "--log-format", "json", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**CHILD_ENV, **(extra_env or {})},
            text=True,
        )
        self.addr = self._await_listen(timeout=10.0)
        # Keep draining stderr so the server never blocks on a full pipe.
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()

    def _await_listen(self, timeout: float) -> str:
        """The address from the `conduit listening` line (`fields.listen`)."""
        found: list[str] = []

        def scan() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line)
                try:
                    listen = json.loads(line).get("fields", {}).get("listen")
                except ValueError:
                    continue
                if listen:
                    found.append(listen)
                    return

        t = threading.Thread(target=scan, daemon=True)
        t.start()
        t.join(timeout)
        if not found:
            self.stop()
            pytest.fail("conduit did not log its listen address:\n" + "".join(self.log))
        return found[0]

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
