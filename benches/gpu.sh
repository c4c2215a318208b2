#!/usr/bin/env bash
# Issue 9 in one command on the GPU machine (no Rust, no network there):
# our training steps and inference next to the PyTorch eager reference of
# the same model, one JSON line per measurement, into benches/gpu-*.jsonl.
#
# Here, before carrying:  cargo build --release -p dak-cli --bin dak-train --bin dak-infer
#                         (then carry target/release/dak-train and dak-infer)
# There:                  bash benches/gpu.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${TORCH_VENV:-/opt/torch/.venv}"
python="$venv/bin/python"
torch_lib="$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin="${DAK_BIN:-target/release}"
out="${OUT:-benches}/gpu-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
device="${DAK_DEVICE:-cuda}"
echo "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo none)" >&2
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >&2
"$bin/dak-train" --bench --device "$device" | tee -a "$out"
"$bin/dak-infer" --bench --device "$device" | tee -a "$out"
(cd benches/reference && "$python" bench_torch.py --device "$device") | tee -a "$out"
echo "wrote $out" >&2
