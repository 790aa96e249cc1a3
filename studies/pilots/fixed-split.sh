#!/usr/bin/env bash
# Pilot: the study recipe and three low-noise candidates on ONE train/val split (split_seed=0),
# default network vs factor_act=linear, seeds 0..5, scored on a 5,000-image validation split
# carved from the training set; the test set plays no part in the choice. The earlier pilot
# (study-recipe.sh) moved the split with the seed, so its val SDs carried ~0.44 pt of sampling
# noise (5,000 images at 89%) on top of training's; here every seed is scored on the same images,
# so the val SD is training's alone and noise_split can split it into churn and whole-run shifts.
# Usage: studies/pilots/fixed-split.sh   (one run per core; stored runs are kept)
#        ORDER="lr05-swa50 lr05-swa75" studies/pilots/fixed-split.sh   (only those candidates)
# Summary: .venv/bin/python studies/pilots/fixed_split_summary.py results/pilots/fixed-split
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=results/pilots/fixed-split
mkdir -p "$OUT"
BASE=(--preset study --dataset fashion-mnist --recipe val_size=5000 --recipe split_seed=0)
declare -A CANDIDATES=(
  [study]=""
  [lr05]="lr=0.05"
  [ema998]="ema_decay=0.998"
  [lr05-ema998]="lr=0.05 ema_decay=0.998"
  # SWA instead of the EMA: the mean of the weights after every step of the last half / quarter
  [lr05-swa50]="lr=0.05 ema_decay=None swa_start=0.5"
  [lr05-swa75]="lr=0.05 ema_decay=None swa_start=0.75"
)
read -r -a ORDER <<< "${ORDER:-study lr05-ema998 lr05 ema998}"
SEEDS=${SEEDS:-6}
tasks=()
for cand in "${ORDER[@]}"; do
  for ((seed = 0; seed < SEEDS; seed++)); do
    for var in default factor_act=linear; do tasks+=("$cand $var $seed"); done
  done
done
worker() {  # core: runs every other task, starting at the core's index
  local core=$1 i
  for ((i = core; i < ${#tasks[@]}; i += 2)); do
    read -r cand var seed <<< "${tasks[$i]}"
    local base="$OUT/$cand--${var//=/-}--seed$seed"
    [[ -s $base.json && -s $base.npz ]] && continue
    local args=("${BASE[@]}")
    for kv in ${CANDIDATES[$cand]}; do args+=(--recipe "$kv"); done
    [[ $var != default ]] && args+=(--set "$var")
    taskset -c "$core" .venv/bin/archlab train "${args[@]}" --seed "$seed" --quiet \
      --json "$base.json" --predictions "$base.npz" > /dev/null
    echo "$(date +%T) $base"
  done
}
worker 0 &
worker 1 &
wait
