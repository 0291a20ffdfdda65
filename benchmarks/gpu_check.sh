#!/usr/bin/env bash
# The GPU path proven in one go on a bare lent GPU machine (about 6 minutes; each stage capped; nothing downloaded):
#   benchmarks/gpu_check.sh OUTDIR          # CUDA tests, then benchmarks/gpu_check.py's stages on the GPU
#   benchmarks/gpu_check.sh OUTDIR --tiny   # the same on the CPU in a few minutes (the CUDA tests skip)
# Python: $PYTHON, else the checkout's .venv, else python3. The checkout is put on PYTHONPATH (no install needed);
# wheels in the checkout's .whl/ folder (`make gpu-wheels` builds it: Captum for the authors' way) are installed
# into a target folder first, without network. Writes OUTDIR/gpu_check.log (everything printed),
# OUTDIR/pytest-cuda.xml and OUTDIR/gpu_check.json (merged after every stage, so a run cut off still reports).
set -uo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [--tiny]" >&2
    exit 2
fi
out=$(mkdir -p "$1" && cd "$1" && pwd)  # absolute: the checks run from the repository root
shift
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${PYTHON:-}" ]; then
    python=$PYTHON
elif [ -x "$root/.venv/bin/python" ]; then
    python=$root/.venv/bin/python
else
    python=python3
fi
# Seconds each stage may run: they add up to well inside one 600-second command.
declare -A cap=([tests]=75 [transition]=75 [backward]=60 [circuit]=240)
if [[ " $* " == *" --tiny "* ]]; then  # on a CPU shared with other work: room to spare, the test only checks it runs
    for stage in "${!cap[@]}"; do cap[$stage]=$((cap[$stage] * 3)); done
fi

check() {
    echo "gpu_check $(date -u +%FT%TZ) python $python $*"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    cd "$root"
    site=${GPU_CHECK_SITE:-${TMPDIR:-/tmp}/neurflow-gpu-check-site}
    wheels=${GPU_CHECK_WHEELS:-$root/.whl}
    if compgen -G "$wheels/*.whl" >/dev/null; then
        "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
            "$wheels"/*.whl || echo "wheels from $wheels failed to install; going on without them"
    fi
    export PYTHONPATH="$root:$site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    "$python" -c "import neurflow_graph.engine.pipeline" || { echo "the engine does not import (above)"; return 1; }
    started=$SECONDS
    timeout -k 10 "${cap[tests]}" "$python" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py \
        --junitxml "$out/pytest-cuda.xml"
    status=$?
    # pytest exits 5 when every test was deselected or skipped (no GPU): not a failure here
    case $status in
        0|5) tests="passed (exit $status)" ;;
        124|137) tests="timed out after ${cap[tests]} s" ;;
        *) tests="failed (exit $status)" ;;
    esac
    echo "CUDA tests: $tests in $((SECONDS - started)) s"
    "$python" - "$out" "$tests" <<'PY'
import sys
sys.path.insert(0, "benchmarks")
from pathlib import Path
from gpu_check import record
Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
record(Path(sys.argv[1]), "cuda_tests", sys.argv[2])
PY
    for stage in transition backward circuit; do
        started=$SECONDS
        timeout -k 10 "${cap[$stage]}" "$python" benchmarks/gpu_check.py "$out" --stage "$stage" "$@"
        rc=$?
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            "$python" - "$out" "$stage" "${cap[$stage]}" <<'PY'
import sys
sys.path.insert(0, "benchmarks")
from pathlib import Path
from gpu_check import record
record(Path(sys.argv[1]), f"{sys.argv[2]}_status", f"timed out after {sys.argv[3]} s (figures so far kept)")
PY
        fi
        echo "stage $stage: exit $rc in $((SECONDS - started)) s"
    done
    case $status in 0|5) return 0 ;; *) return "$status" ;; esac
}

check "$@" 2>&1 | tee "$out/gpu_check.log"
exit "${PIPESTATUS[0]}"
