#!/usr/bin/env bash
# Pilot: where the studies' seed SD comes from. The default network is trained at seeds
# 0..N-1 with the `study` recipe (exactly the factorization study's baseline runs) and with
# `quick`, keeping every test image's prediction; noise_split.py then splits each recipe's seed
# SD of test top-1 into the churn of single images and whole-run shifts
# (archlab.analysis.noise). Nothing is chosen on these numbers: they explain the noise.
# Usage: studies/pilots/noise-floor.sh   (two seeds at a time, one per core; stored runs kept)
# Summary: .venv/bin/python studies/pilots/noise_split.py results/pilots/noise-floor
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=results/pilots/noise-floor
mkdir -p "$OUT"
declare -A SEEDS=([study]=8 [quick]=6)
one() {  # preset seed core
  local base="$OUT/$1--seed$2"
  [[ -s $base.json && -s $base.npz ]] && return 0
  taskset -c "$3" .venv/bin/archlab train --preset "$1" --dataset fashion-mnist --seed "$2" \
    --quiet --json "$base.json" --predictions "$base.npz" > /dev/null
  echo "$(date +%T) $base"
}
for preset in study quick; do
  for ((s = 0; s < SEEDS[$preset]; s += 2)); do
    one "$preset" "$s" 0 &
    one "$preset" "$((s + 1))" 1 &
    wait
  done
done
