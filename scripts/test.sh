#!/usr/bin/env bash
# All tests, from a fresh machine: set up the Python env (pyarrow/polars for
# the interop tests, torch for tch), then the whole workspace's tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-python.sh
source scripts/env.sh
cargo test --workspace --no-fail-fast "$@"
