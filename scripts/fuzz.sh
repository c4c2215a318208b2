#!/usr/bin/env bash
# Run every cargo-fuzz target for a bounded time: bash scripts/fuzz.sh [SECONDS]
# (default 60 per target). Needs a nightly toolchain and cargo-fuzz; installs
# cargo-fuzz from crates.io when missing and skips, saying why, when either
# cannot be had. New interesting inputs go to fuzz/corpus-new/ (not the
# committed corpus); a crash stops the run with libFuzzer's reproducer in
# fuzz/artifacts/. Prints executions per target at the end. The random
# seed is fixed (DAK_FUZZ_SEED, default 1) so a CI run can be repeated;
# set another to explore elsewhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-60}"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: skipping — no nightly toolchain (rustup toolchain install nightly)"; exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz from crates.io"
  if ! cargo install cargo-fuzz --locked --quiet >/dev/null 2>&1; then
    echo "fuzz: skipping — cargo-fuzz could not be installed"; exit 0
  fi
fi
source scripts/env.sh 2>/dev/null || true
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^dak-fuzz$')
# Address sanitizer off: the readers are safe Rust (unsafe_code = forbid); the
# build is several times faster and coverage guidance is unchanged.
cargo +nightly fuzz build --sanitizer none --release 2>&1 | tail -n 3
summary=""
for t in $targets; do
  mkdir -p "fuzz/corpus-new/$t"
  log=$(mktemp)
  if ! cargo +nightly fuzz run --sanitizer none --release "$t" "fuzz/corpus-new/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=262144 \
      -seed="${DAK_FUZZ_SEED:-1}" \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $t FAILED (reproducer in fuzz/artifacts/$t/)"; exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  summary+=$(printf '%-16s %10s executions in %ss\n' "$t" "${runs:-?}" "$seconds")$'\n'
  rm -f "$log"
done
echo "fuzz: no crashes"
printf '%s' "$summary"
