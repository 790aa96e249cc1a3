#!/bin/bash
# The GPU checks in one call of at most ~9 minutes, on a machine with a CUDA GPU, from the repo
# root: the CUDA-marked tests, `archlab bench --device cuda`, and the factorization study at full
# scale until the time is up (it resumes where it stopped on the next GPU). Everything lands in
# $OUT: all.log, bench.json, bench.md and the study's journal.log; nothing else is written there.
#
# Without archlab's dependencies installed, wheels in .whl/ are installed into /tmp/site first and
# the Fashion-MNIST files are read from data/fashion-mnist/ (both ignored by git; see README).
set -u
OUT=${OUT:-/tmp/gpu-check}
PY=${PY:-python3}
TESTS_S=${TESTS_S:-100}
BENCH_S=${BENCH_S:-200}
STUDY_S=${STUDY_S:-200}
GPU_JOBS=${GPU_JOBS:-6}
mkdir -p "$OUT"
LOG="$OUT/all.log"
export PYTHONUNBUFFERED=1 ARCHLAB_NO_DOWNLOAD=1
say() { echo "=== $(date -u +%T) $*" | tee -a "$LOG"; }

if [ -d .whl ]; then
    say "installing .whl/ into /tmp/site"
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl >>"$LOG" 2>&1 || say "wheel install failed"
    export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
say "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
  lscpu | grep -E "Model name|^CPU\(s\)"
  $PY -c "import torch, optuna, fvcore, pandas; print('torch', torch.__version__, 'cuda',
torch.version.cuda, torch.cuda.get_device_name(0), 'optuna', optuna.__version__, 'pandas',
pandas.__version__)"; } >>"$LOG" 2>&1

say "CUDA tests (limit ${TESTS_S}s)"
timeout "$TESTS_S" $PY -m pytest -q -rs -m cuda -p no:cacheprovider tests/test_cuda.py \
    >>"$LOG" 2>&1
say "CUDA tests rc $?"

say "bench --device cuda (limit ${BENCH_S}s)"
timeout "$BENCH_S" $PY -m archlab.cli bench --device cuda --run-seeds 2 --out "$OUT/bench" \
    >>"$LOG" 2>&1
say "bench rc $?"
cp "$OUT"/bench/bench.json "$OUT"/bench/bench.md "$OUT"/ 2>/dev/null
rm -rf "$OUT/bench"

say "factorization at full scale, ${GPU_JOBS} workers on the GPU (stopped after ${STUDY_S}s)"
timeout -s INT -k 40 "$STUDY_S" $PY -m archlab.cli study run studies/factorization.yaml \
    --scale full --jobs "$GPU_JOBS" --results "$OUT/results" --no-report >>"$LOG" 2>&1
say "study rc $? (124: stopped at the time limit; the journal resumes)"
cp "$OUT/results/factorization/journal.log" "$OUT/journal.log" 2>/dev/null
rm -rf "$OUT/results"
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv >>"$LOG" 2>&1
say "done"
ls -la "$OUT" | tee -a "$LOG"
