#!/usr/bin/env bash
# The main job on the embedded demo dataset, from a fresh machine:
# set up the Python env, build release binaries, generate the demo shards,
# fit the two augmentors (SMA, DMA) on its source domain, materialize
# synthetic clips of every mode, train the baseline and the full method on
# the source domain, and report both on the shifted target domain.
# Re-runs skip what is up to date.
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

# A small estimator (C=32, L=2, K=2) for a few epochs on CPU: minutes, not
# the paper's numbers. Both runs evaluate on the target domain every epoch.
runs="${DAK_DEMO_RUNS:-runs/demo}"
train_args=(--shards "$out" --train-dataset demo-source --train-split train
  --eval-dataset demo-target --eval-split test
  --frames 27 --channels 32 --encoder-layers 2 --decoder-layers 2 --heads 4
  --batch-size 32 --lr 5e-4 --stride 81 --warmup-epochs 2
  --epochs "${DAK_DEMO_EPOCHS:-4}" --device "$device")
"$bin/dak-train" "${train_args[@]}" --ablation baseline --out "$runs/baseline"
"$bin/dak-train" "${train_args[@]}" --ablation full --sma "$out-syn-sma" --dma "$out-syn-dma" --out "$runs/full"
# The paper's tables for both runs on the target domain, and a picture of
# predictions against ground truth (runs/demo/*/eval-demo/).
for run in baseline full; do
  "$bin/dak-eval" --checkpoint "$runs/$run" --shards "$out" --protocol demo --render 4 --device "$device"
done
echo "demo: source shards in $out, models in $models, synthetic shards in $out-syn-{structure,sma,dma} (report.json in each), training runs in $runs/{baseline,full} (metrics.jsonl, curves.png, export/, eval-demo/{table.md,render.png})"
