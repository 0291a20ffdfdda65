#!/usr/bin/env bash
# The GPU path proven in one go (about 8 minutes on one H200; nothing is downloaded):
#   benchmarks/gpu_check.sh OUTDIR          # CUDA tests (pytest -m cuda), then benchmarks/gpu_check.py on the GPU
#   benchmarks/gpu_check.sh OUTDIR --tiny   # the same script on the CPU in seconds (the CUDA tests skip)
# Writes OUTDIR/gpu_check.log (everything printed), OUTDIR/pytest-cuda.xml and OUTDIR/gpu_check.json.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [--tiny]" >&2
    exit 2
fi
out=$(mkdir -p "$1" && cd "$1" && pwd)  # absolute: the checks run from the repository root
shift
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
check() {
    echo "gpu_check $(date -u +%FT%TZ) $*"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    cd "$root"
    status=0
    "$python" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py --junitxml "$out/pytest-cuda.xml" || status=$?
    # pytest exits 5 when every test was deselected or skipped (no GPU): not a failure here
    if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then
        echo "CUDA tests failed (exit $status); running the benchmark anyway"
    fi
    "$python" benchmarks/gpu_check.py "$out" "$@"
    if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then
        exit "$status"
    fi
}

check "$@" 2>&1 | tee "$out/gpu_check.log"
exit "${PIPESTATUS[0]}"
