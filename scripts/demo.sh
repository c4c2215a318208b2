#!/usr/bin/env bash
# The main job on the embedded demo dataset, from a fresh machine:
# set up the Python env, build release binaries, generate the demo shards,
# and print their statistics. Re-runs skip what is up to date.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-python.sh
source scripts/env.sh
cargo build --release --bins
bin=target/release
out="${DAK_DEMO_OUT:-shards/demo}"
"$bin/dak-prep" synth --out "$out" --seed 0
"$bin/dak-prep" stats "$out" --json "$out.stats.json"
echo "demo: shards in $out, statistics in $out.stats.json"
