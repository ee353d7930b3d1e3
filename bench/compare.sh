#!/usr/bin/env bash
# brainlift vs plain JAX, side by side, on the BrainPy tutorial's workloads.
#
#   bench/compare.sh                  # everything, at 1 and 2 threads (about 10 minutes on 2 cores)
#   BENCH_PARTS=0 bench/compare.sh    # skip the whole RNN/SNN part runs (about 2 minutes)
#   BENCH_THREADS="1" bench/compare.sh  # only these thread counts (space-separated, default "1 2")
#   BENCH_BRAINPY=1 bench/compare.sh  # also the tutorial's own BrainPy code (installs brainpy)
#
# Needs: Rust (cargo), python3 >= 3.11 with venv, network access to PyPI the first time.
# Creates bench/.venv (git-ignored) with CPU JAX, builds brainlift in release, and for every
# thread count N of BENCH_THREADS runs both sides pinned to cores 0..N-1 with N threads each
# (compare.py sets XLA_FLAGS, PJRT_NPROC, OMP_NUM_THREADS, BRAINLIFT_THREADS, RAYON_NUM_THREADS);
# prints one table per thread count and writes bench/results.json (keyed by thread count).
# BRAINLIFT_BIN=/path/to/brainlift skips the cargo build and uses that binary.
set -euo pipefail
usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  echo "Other settings (environment): BENCH_SECONDS (timing budget per step workload, default 1),"
  echo "BENCH_CORE (first pinned core, default 0), PYTHON (the interpreter for the venv)."
}
if [ $# -gt 0 ]; then
  case "$1" in
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh takes no arguments (got '$*'); its settings are environment variables:" >&2
       usage >&2; exit 2 ;;
  esac
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PYTHON:-python3}"

if [ ! -x "$HERE/.venv/bin/python" ] || ! "$HERE/.venv/bin/python" -c "import jax" 2>/dev/null; then
  echo "[bench] creating $HERE/.venv and installing $(grep -v '^#' "$HERE/requirements.txt" | tr '\n' ' ')" >&2
  "$PY" -m venv "$HERE/.venv"
  "$HERE/.venv/bin/pip" install --quiet --upgrade pip
  "$HERE/.venv/bin/pip" install --quiet -r "$HERE/requirements.txt"
fi

if [ "${BENCH_BRAINPY:-0}" = "1" ] && ! "$HERE/.venv/bin/python" -c "import brainpy" 2>/dev/null; then
  echo "[bench] installing $(grep -v '^#' "$HERE/requirements-brainpy.txt" | tr '\n' ' ')" >&2
  "$HERE/.venv/bin/pip" install --quiet -r "$HERE/requirements-brainpy.txt"
fi

if [ -z "${BRAINLIFT_BIN:-}" ]; then
  echo "[bench] cargo build --release" >&2
  (cd "$ROOT" && cargo build --release --quiet)
  BRAINLIFT_BIN="$ROOT/target/release/brainlift"
fi
export BRAINLIFT_BIN
export JAX_PYTHON="$HERE/.venv/bin/python"
# The thread settings (XLA_FLAGS and the rest) are per thread count: compare.py sets them.
exec "$PY" "$HERE/compare.py"
