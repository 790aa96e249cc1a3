#!/usr/bin/env bash
# Pilot that chose the studies' quick recipe: candidate recipes x two variants x 5 seeds, scored
# on a 5,000-image validation split carved from the training set (the test set plays no part).
# Usage: studies/pilots/study-recipe.sh [CORE]   (stored runs are kept; rerunning trains the rest)
# Summary: .venv/bin/python studies/pilots/summarize.py results/pilots/study-recipe
set -euo pipefail
cd "$(dirname "$0")/../.."
CORE=${1:-0}
OUT=results/pilots/study-recipe
mkdir -p "$OUT"
BASE=(--preset quick --recipe val_size=5000)
declare -A CANDIDATES=(
  [quick]=""
  [pbn]="precise_bn=50"
  [ema-pbn]="ema_decay=0.99 precise_bn=50"
  [30k-ema-pbn]="train_subset=30000 ema_decay=0.995 precise_bn=50"
  [lr05-pbn]="lr=0.05 precise_bn=50"
  [24k-lr05-pbn]="train_subset=24000 lr=0.05 precise_bn=50"
)
# candidates to run, in order (default: all); run two lists side by side on two cores
read -r -a ORDER <<< "${ORDER:-ema-pbn quick 30k-ema-pbn lr05-pbn 24k-lr05-pbn pbn}"
VARIANTS=(default factor_act=linear)
for cand in "${ORDER[@]}"; do
  for seed in 0 1 2 3 4; do
    for var in "${VARIANTS[@]}"; do
      file="$OUT/$cand--${var//=/-}--seed$seed.json"
      [[ -s $file ]] && continue
      args=("${BASE[@]}")
      for kv in ${CANDIDATES[$cand]}; do args+=(--recipe "$kv"); done
      [[ $var != default ]] && args+=(--set "$var")
      taskset -c "$CORE" .venv/bin/archlab train "${args[@]}" --seed "$seed" --json "$file" --quiet \
        > /dev/null
      echo "$(date +%T) $file"
    done
  done
done
