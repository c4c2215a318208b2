#!/usr/bin/env bash
# Issues 5 and 9 on the GPU machine in one command (it has PyTorch but no
# Rust and no network): our training steps, inference and peak GPU memory
# next to the PyTorch eager reference of the same model, the windows/s the
# shard loader delivers, and one epoch of the default configuration
# (T = 27, fp32) and of T = 81 in bf16.
#
# Here (builds the release binaries, writes gpu-carry/: stripped, gzipped
# dak-train and dak-infer, a 243-frame demo dataset, 128 SMA and 128 DMA
# clips of 27 and of 81 frames; the device tool carries at most 64 MiB with
# the tracked tree):
#     bash benches/gpu.sh --prepare
# There (carry gpu-carry; two calls keep each under the 600 s per call):
#     bash benches/gpu.sh train reference infer
#     bash benches/gpu.sh peak          (epoch too, if device time is left)
#     bash benches/gpu.sh compare       (the fp32 step goal alone, ~4 min on an H200;
#                                        `--prepare bins` is all it needs)
# GROUP: train reference infer peak epoch profile compare (none given: all
# but epoch, which issue 5 measured already, profile and compare). One JSON line per
# measurement goes to $OUT/gpu.jsonl (else benches/gpu-out/) as it is made,
# and every part's log into $OUT/logs.tar.gz, refreshed after each part:
# the device tool returns at most 8 files. Each part has its own time limit, so one that fails or
# overruns still leaves the others' numbers.
#
# Knobs: DAK_DEVICE (cuda), DAK_BENCH_STEPS (timed steps, 10), DAK_BENCH_ARGS
# and DAK_REF_ARGS (extra model flags, e.g. a small model for a CPU smoke run:
# DAK_DEVICE=cpu DAK_BENCH_ARGS="--channels 16 --encoder-layers 1 ..."),
# DAK_PART_LIMIT (seconds per part, instead of each part's own),
# DAK_COMPARE_FRAMES and DAK_COMPARE_METHODS (compare's T and methods:
# 27, "g full"), TORCH_VENV (/opt/torch/.venv).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
carry=gpu-carry

if [[ "${1:-}" == "--prepare" ]]; then
  set -e
  # `--prepare bins`: the binaries alone, all `compare` needs (~10 MB).
  bins_only=false && [[ "${2:-}" == bins ]] && bins_only=true
  if ! $bins_only && [[ ! -d models/demo/sma || ! -d models/demo/dma || ! -d shards/demo ]]; then
    echo "shards/demo or models/demo/{sma,dma} missing: run bash scripts/demo.sh first (or --prepare bins)" >&2
    exit 1
  fi
  source scripts/env.sh
  bash scripts/setup-python.sh
  cargo build --release -p dak-cli --bin dak-train --bin dak-infer --bin dak-prep --bin dak-augment
  rm -rf "$carry" && mkdir -p "$carry/bin"
  # Stripped and gzipped: 29 MB of binaries become 10.
  for b in dak-train dak-infer; do strip -o "$carry/bin/$b" "target/release/$b" && gzip -9 "$carry/bin/$b" || exit 1; done
  # The GPU machine's copy of the tree may not carry our git history.
  echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!gpu-carry' || echo -dirty)" > "$carry/COMMIT"
  $bins_only && exit 0
  dak_bin=target/release
  # The embedded demo dataset, shortened to fit the carry limit; 2D from the
  # ground truth (the default --input-2d), so no detections.
  "$dak_bin/dak-prep" synth -q --out "$carry/demo" --frames 243 --noise-px 0
  # Synthetic clips are as long as the model's T, and an augmentor makes
  # clips of the length it was fitted on: the demo's are 27 frames, so the
  # T = 81 run gets augmentors fitted like them on 81-frame clips (minutes).
  for mode in sma dma; do
    if [[ ! -f "models/demo-t81/$mode/model.json" ]]; then
      fit_args=(--steps 400)
      [[ $mode == dma ]] && fit_args=(--steps 300 --predict-frames 31)
      "$dak_bin/dak-augment" fit -q --mode "$mode" --shards shards/demo --dataset demo-source --split train \
        --out "models/demo-t81/$mode" --hidden 128 --clip-frames 81 "${fit_args[@]}" --force
    fi
  done
  for mode in sma dma; do
    for frames in 27 81; do
      model="models/demo/$mode"
      [[ $frames == 81 ]] && model="models/demo-t81/$mode"
      "$dak_bin/dak-augment" sample -q --mode "$mode" --model "$model" --shards "$carry/demo" \
        --dataset demo-source --split train --out "$carry/demo-syn-$mode-t$frames" --clips 128 \
        --clip-frames "$frames" --seed 0 >/dev/null
    done
  done
  # What travels: the carried folder plus the tracked tree, 64 MiB at most.
  size=$(( $(du -sb "$carry" | cut -f1) + $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) ))
  echo "gpu-carry and the tracked tree: $((size / 1048576)) MiB of 64" >&2
  (( size < 63 * 1048576 )) || { echo "too large to carry" >&2; exit 1; }
  exit 0
fi

venv="$(realpath "${TORCH_VENV:-/opt/torch/.venv}")"
python="$venv/bin/python"
torch_lib="$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
out="${OUT:-benches/gpu-out}"
mkdir -p "$out"
log="$out/gpu.jsonl"
# Logs and memory samples gather here and travel as one archive.
work="$(mktemp -d)"
bin="${DAK_BIN:-}"
if [[ -z "$bin" ]]; then
  bin="$work/bin"
  mkdir -p "$bin"
  for b in dak-train dak-infer; do
    gunzip -c "$carry/bin/$b.gz" > "$bin/$b" && chmod +x "$bin/$b" || { echo "cannot unpack $carry/bin/$b.gz" >&2; exit 1; }
  done
fi
device="${DAK_DEVICE:-cuda}"
steps="${DAK_BENCH_STEPS:-10}"
read -r -a extra <<< "${DAK_BENCH_ARGS:-}"
read -r -a ref_extra <<< "${DAK_REF_ARGS:-}"
shards=(--shards "$carry/demo")
groups=("$@")
want() { [[ ${#groups[@]} == 0 && $1 != epoch && $1 != profile && $1 != compare || " ${groups[*]} " == *" $1 "* ]]; }

gpu_name="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
printf '{"work":"meta","gpu":"%s","driver":"%s","commit":"%s","cpus":%s,"torch":"%s","groups":"%s"}\n' \
  "${gpu_name:-none}" \
  "$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)" \
  "$(cat "$carry/COMMIT" 2>/dev/null || git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(nproc)" \
  "$("$python" -c 'import torch; print(torch.__version__)')" "${groups[*]:-default}" | tee -a "$log"

# part NAME LIMIT_S CMD...: JSON lines to the log (each opened with
# $PART_TAG, if set), stderr to NAME.log.
part() {
  local name=$1 limit=${DAK_PART_LIMIT:-$2} t0=$SECONDS rc
  shift 2
  echo "== $name" >&2
  timeout --kill-after=10 "$limit" "$@" 2> "$work/$name.log" | sed -u "s/^{/{${PART_TAG:-}/" | tee -a "$log"
  rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - t0)) s" >&2
  [[ $rc == 0 ]] || tail -5 "$work/$name.log" >&2
  archive_logs
}

archive_logs() {
  # A memory sampler may still be writing: tar then warns and exits 1, but
  # the archive is whole up to that moment.
  local rc
  tar czf "$out/logs.tar.gz.tmp" -C "$work" --exclude=bin --warning=no-file-changed .
  rc=$?
  # tar's 1 is "a file changed as it was read"; 2 is a fatal error.
  if (( rc <= 1 )); then mv "$out/logs.tar.gz.tmp" "$out/logs.tar.gz"; else rm -f "$out/logs.tar.gz.tmp"; fi
}

# Like part, with the GPU's used memory sampled every 100 ms (the process's
# whole footprint: CUDA context, allocator cache and tensors, as nvidia-smi
# and the paper's Table 8 count it).
part_with_peak() {
  local name=$1 sampler base peak
  base="$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1)"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$work/$name.mem" 2>/dev/null &
  sampler=$!
  part "$@"
  kill "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null
  archive_logs
  peak="$(sort -n "$work/$name.mem" 2>/dev/null | tail -1)"
  printf '{"work":"peak-memory","part":"%s","gpu_used_mib":%s,"idle_mib":%s}\n' \
    "$name" "${peak:-null}" "${base:-null}" | tee -a "$log"
}

# (a) training steps, G alone and the full method, T = 27/81, fp32/bf16.
want train && part ours-train 300 "$bin/dak-train" --bench --device "$device" --bench-steps "$steps" "${extra[@]}"
# The same at T = 27 with one backward of the whole objective and the
# auxiliary passes joined, as the reference runs it (ours runs it part by
# part, auxiliary passes apart): the like-for-like step.
want train && part ours-train-one-backward 180 "$bin/dak-train" --bench --device "$device" --bench-steps "$steps" \
  --frames 27 --one-backward "${extra[@]}"
want reference && part reference 300 bash -c 'cd benches/reference && exec "$0" bench_torch.py "$@"' "$python" \
  --device "$device" --steps "$steps" "${ref_extra[@]}"
# The two choices of our default step, priced on the reference itself: the
# auxiliary estimators' real and synthetic clips in two passes (ours part by
# part), and gradients accumulated into zeroed buffers (ours flat buffers).
want reference && part reference-split-aux 180 bash -c 'cd benches/reference && exec "$0" bench_torch.py "$@"' "$python" \
  --device "$device" --steps "$steps" --method full --frames 27 --split-aux --no-inference "${ref_extra[@]}"
want reference && part reference-grads-in-place 120 bash -c 'cd benches/reference && exec "$0" bench_torch.py "$@"' \
  "$python" --device "$device" --steps "$steps" --method g --frames 27 --zero-grad-in-place --no-inference "${ref_extra[@]}"
# (a') The reference's full method at T = 27 in fp32 held 78.8 GiB on an
# H200: on an H100 it may not fit. Then both sides again at batch 32, so
# that the fp32 ratio is still measured (on the same GPU, the same work).
if want reference && grep -q '"work": "train-full", "frames": 27, "batch": 64, "precision": "fp32", "out_of_memory"' "$log"; then
  part reference-full-b32 180 bash -c 'cd benches/reference && exec "$0" bench_torch.py "$@"' "$python" \
    --device "$device" --steps "$steps" --method full --frames 27 --precision fp32 --batch 32 --no-inference "${ref_extra[@]}"
  part ours-train-full-b32 180 "$bin/dak-train" --bench --device "$device" --bench-steps "$steps" --ablation full \
    --frames 27 --precision fp32 --batch-size 32 "${extra[@]}"
fi
# (b) inference frames/s at T = 81, batch 1, 64, 1024.
want infer && part ours-infer 180 "$bin/dak-infer" --bench --device "$device" --bench-steps "$steps"
# (c) peak memory of the full method at batch 64, one process each (T = 81
# in fp32 does not fit in 139 GiB, for either side: the grids above report it
# as out_of_memory); the first also times the loader on the demo shards.
for row in "27 fp32" "81 bf16"; do
  read -r frames precision <<< "$row"
  want peak && part_with_peak "peak-ours-full-t$frames-$precision" 180 "$bin/dak-train" --bench --device "$device" \
    --bench-steps 3 --frames "$frames" --precision "$precision" --ablation full "${shards[@]}" "${extra[@]}"
  want peak && part_with_peak "peak-reference-full-t$frames-$precision" 180 \
    bash -c 'cd benches/reference && exec "$0" bench_torch.py "$@"' "$python" --device "$device" --steps 3 \
    --frames "$frames" --precision "$precision" --method full --no-inference "${ref_extra[@]}"
done
# (c') ours with activation checkpointing (--checkpoint-activations; the
# reference has none): peak memory and step time, most telling first (a
# call cut short loses the last): recomputation in chunks of 16 clips (the
# default) and of 4 at T = 27 (on the CPU, chunks of 4 held 1.5 GB less at
# C = 512 for +1 % step time), bf16, then T = 81.
for row in "27 fp32 16" "27 fp32 4" "27 bf16 16" "81 bf16 16" "81 fp32 16"; do
  read -r frames precision clips <<< "$row"
  want peak && part_with_peak "peak-ours-full-t$frames-$precision-checkpointed-c$clips" 180 "$bin/dak-train" --bench \
    --device "$device" --bench-steps 5 --frames "$frames" --precision "$precision" --ablation full \
    --checkpoint-activations="$clips" "${extra[@]}"
done
# The fp32 goal (step time <= 1.0x the reference) where it is closest:
# G alone and the full method with one backward, T = 27, the two sides
# alternated in separate processes so that drift of the machine shows as
# spread, not as a ratio (~5 minutes on an H200; each of the 10 parts at
# most 120 s). Each line gets "round".
if want compare; then
  # DAK_COMPARE_FRAMES (27) and DAK_COMPARE_METHODS ("g full") pick another
  # T or one method (the reference's full method at T = 81 runs out of
  # memory on an H200).
  frames="${DAK_COMPARE_FRAMES:-27}"
  read -r -a methods <<< "${DAK_COMPARE_METHODS:-g full}"
  for round in 1 2 3; do
    # Round 2 starts with the reference: drift within a round then falls on
    # both sides.
    sides=(ours reference) && [[ $round == 2 ]] && sides=(reference ours)
    for side in "${sides[@]}"; do
      for method in "${methods[@]}"; do
        [[ $method == full && $round == 3 ]] && continue
        if [[ $side == ours ]]; then
          ablation=baseline && [[ $method == full ]] && ablation=full
          cmd=("$bin/dak-train" --bench --device "$device" --bench-steps "$steps" --frames "$frames" --precision fp32
            --ablation "$ablation" --one-backward "${extra[@]}")
        else
          cmd=(bash -c 'cd benches/reference && exec "$0" bench_torch.py "$@"' "$python" --device "$device"
            --steps "$steps" --method "$method" --frames "$frames" --precision fp32 --no-inference "${ref_extra[@]}")
        fi
        PART_TAG="\"round\":$round," part "compare-$side-$method-$round" 120 "${cmd[@]}"
        # Ours failing on the device costs every later part's time for
        # nothing: stop at the first, leaving time to mend and rerun.
        if [[ $side == ours && $round == 1 && $method == g ]] &&
          ! grep -q '^{"round":1,"impl":"dak-pose".*"step_s"' "$log"; then
          echo "compare: our first step time is missing (see compare-ours-g-1.log in logs.tar.gz); stopping" >&2
          rm -rf "$work"
          exit 1
        fi
      done
    done
  done
  # Ours / reference per round and of the medians, one line per method.
  "$python" benches/reference/compare_summary.py "$log" | tee -a "$log"
fi
# Kernel by kernel, G alone, T = 27, fp32, both sides (Nsight Compute: on
# Firecracker machines only, see the device library): each kernel's time
# for about two steps, into NAME.csv in the logs. Ours launches ~1190
# kernels before its first step (initialisation, the gradients' flat
# buffers), skipped here; a step of G is ~1230 kernels on either side.
# Summed per step against the step's time, they show the device's idle
# share.
ncu_bin="$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null | head -1)"
ncu_args=(--clock-control none --metrics gpu__time_duration.sum --csv --launch-count 2600)
if want profile && [[ -n "$ncu_bin" ]]; then
  part ncu-ours 240 "$ncu_bin" "${ncu_args[@]}" --launch-skip 1190 --log-file "$work/ncu-ours.csv" "$bin/dak-train" \
    --bench --device "$device" --bench-steps 1 --bench-warmup 1 --frames 27 --precision fp32 --ablation baseline \
    "${extra[@]}"
  part ncu-reference 240 bash -c 'cd benches/reference && exec "$0" "$@"' "$ncu_bin" "${ncu_args[@]}" \
    --log-file "$work/ncu-reference.csv" "$python" bench_torch.py --device "$device" --steps 1 --warmup 1 --method g \
    --frames 27 --precision fp32 --no-inference "${ref_extra[@]}"
elif want profile; then
  echo "profile: no ncu on this machine" >&2
fi
# Issue 5: one epoch of the default configuration (full method, C=512, L=4,
# K=6, T=27, batch 64, fp32) on the demo shards, evaluated on the target
# domain, and the same at T = 81 in bf16.
for row in "27 fp32" "81 bf16"; do
  read -r frames precision <<< "$row"
  name="epoch-t$frames-$precision"
  run_dir="$(mktemp -d)/$name"
  synthetic=(--sma "$carry/demo-syn-sma-t$frames" --dma "$carry/demo-syn-dma-t$frames")
  want epoch && part_with_peak "$name" 300 "$bin/dak-train" -q "${shards[@]}" "${synthetic[@]}" --out "$run_dir" \
    --device "$device" --epochs 1 --frames "$frames" --precision "$precision" --train-dataset demo-source \
    --eval-dataset demo-target --eval-split test "${extra[@]}"
  if want epoch && [[ -f "$run_dir/metrics.jsonl" ]]; then
    cp "$run_dir/metrics.jsonl" "$work/$name.metrics.jsonl"
    cp "$run_dir/config.json" "$work/$name.config.json"
    sed "s/^{/{\"work\":\"$name\",/" "$run_dir/metrics.jsonl" | tee -a "$log"
    archive_logs
  fi
  rm -rf "$run_dir"
done
rm -rf "$work"
echo "wrote $log and $out/logs.tar.gz" >&2
