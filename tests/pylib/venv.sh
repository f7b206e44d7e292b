# Shared by the Python interop suites' run.sh scripts (tests/interop,
# tests/triton, tests/text). Source it with $here set to the suite's directory. It sets
# $repo and $bin (the conduit binary: $CONDUIT_BIN, default
# target/debug/conduit, made absolute; exits 2 if missing) and $venv, a
# git-ignored $here/.venv made with $PYTHON (default python3, >= 3.10) into
# which $here/requirements.txt is installed, again only when it changes.
# shellcheck shell=bash

repo="$(cd "$here/../.." && pwd)"

bin="${CONDUIT_BIN:-target/debug/conduit}"
case "$bin" in
  /*) ;;
  *) bin="$repo/$bin" ;;
esac
if [ ! -x "$bin" ]; then
  echo "run.sh: no conduit binary at $bin (run 'cargo build' or set CONDUIT_BIN)" >&2
  exit 2
fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "run.sh: $python must be Python >= 3.10 (set PYTHON)" >&2
  exit 2
fi

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
stamp="$venv/.requirements-stamp"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi

export CONDUIT_BIN="$bin"
# The suites import tests/pylib (conduit_proc).
export PYTHONPATH="$repo/tests/pylib${PYTHONPATH:+:$PYTHONPATH}"
