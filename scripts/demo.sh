#!/usr/bin/env bash
# The main job on the embedded demo dataset, from a fresh machine:
# set up the Python env, build release binaries, generate the demo shards,
# fit the two augmentors (SMA, DMA) on its source domain, materialize
# synthetic clips of every mode, and print statistics and augmentation
# reports. Re-runs skip what is up to date.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-python.sh
source scripts/env.sh
cargo build --release --bins
bin=target/release
out="${DAK_DEMO_OUT:-shards/demo}"
models="${DAK_DEMO_MODELS:-models/demo}"
clips="${DAK_DEMO_CLIPS:-2000}"
device="${DAK_DEVICE:-cpu}"

"$bin/dak-prep" synth --out "$out" --seed 0
"$bin/dak-prep" stats "$out" --json "$out.stats.json"

# Augmentors learn from the source domain's training split only.
source_args=(--shards "$out" --dataset demo-source --split train)
"$bin/dak-augment" fit --mode sma "${source_args[@]}" --out "$models/sma" \
  --steps 400 --hidden 128 --device "$device"
"$bin/dak-augment" fit --mode dma "${source_args[@]}" --out "$models/dma" \
  --steps 300 --hidden 128 --device "$device"
for mode in structure sma dma; do
  model_args=()
  [[ "$mode" != structure ]] && model_args=(--model "$models/$mode")
  "$bin/dak-augment" --mode "$mode" "${model_args[@]}" "${source_args[@]}" \
    --out "$out-syn-$mode" --clips "$clips" --seed 0 --device "$device"
done
"$bin/dak-prep" stats "$out-syn-structure" "$out-syn-sma" "$out-syn-dma" --json "$out-syn.stats.json"
echo "demo: source shards in $out, models in $models, synthetic shards in $out-syn-{structure,sma,dma} (report.json in each)"
