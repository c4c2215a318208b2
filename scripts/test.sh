#!/usr/bin/env bash
# All tests, from a fresh machine: set up the Python env (pyarrow/polars for
# the interop tests, torch for tch), then the whole workspace's tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-python.sh
source scripts/env.sh
# dak-bench holds benchmarks, no tests (clippy --all-targets checks it
# compiles); building its criterion and libtorch binaries here only costs CI time.
cargo test --workspace --exclude dak-bench --no-fail-fast "$@"
# Under CI (or with DAK_FUZZ_SECONDS set) every reader also runs under
# cargo fuzz for a bounded time; skipped with a message where cargo-fuzz or
# a nightly toolchain cannot be had. `cargo test` above already ran the
# stable mutation campaign over the same targets.
if [[ -n "${CI:-}" || -n "${DAK_FUZZ_SECONDS:-}" ]]; then
  bash scripts/fuzz.sh "${DAK_FUZZ_SECONDS:-10}"
fi
