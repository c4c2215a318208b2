#!/usr/bin/env bash
# The main job on the embedded demo dataset, from a fresh machine: set up
# the Python env, build release binaries, then run pipelines/demo.toml —
# generate the demo shards, fit the two augmentors (SMA, DMA) on its source
# domain, materialize synthetic clips of every mode, train the baseline and
# the full method on the source domain, and report both on the shifted
# target domain. Re-runs skip every stage that is up to date.
#
# Knobs: DAK_DEMO_EPOCHS (default 4), DAK_DEMO_CLIPS (2000), DAK_DEVICE (cpu).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-python.sh
source scripts/env.sh
cargo build --release --bins
target/release/dak pipeline run pipelines/demo.toml \
  --set epochs="${DAK_DEMO_EPOCHS:-4}" --set clips="${DAK_DEMO_CLIPS:-2000}" --set device="${DAK_DEVICE:-cpu}"
for run in baseline full; do
  echo "== $run on the target domain (runs/demo/$run/eval-demo/table.md)"
  cat "runs/demo/$run/eval-demo/table.md"
done
echo "demo: source shards in shards/demo, models in models/demo, synthetic shards in shards/demo-syn-{structure,sma,dma} (report.json in each), training runs in runs/demo/{baseline,full} (metrics.jsonl, curves.png, export/, eval-demo/{table.md,render.png})"
