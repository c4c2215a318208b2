#!/usr/bin/env bash
# Creates the project-local Python environment (.venv) that the build and the
# tests need: torch==2.11.0 from PyPI (libtorch for tch, LIBTORCH_USE_PYTORCH=1),
# and numpy/scipy/h5py/pyarrow/polars for fixtures and interop tests.
# Re-runs reuse what is installed (a stamp file records the requirement set).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DAK_VENV:-$root/.venv}"
req="$root/scripts/requirements.txt"
stamp="$venv/.dak-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

echo "setup: creating Python environment in $venv (torch 2.11.0 and test tools from PyPI)" >&2
# uv installs from its cache by hard links, so a fresh clone re-creates the
# multi-GB torch environment in seconds instead of minutes.
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --user uv >&2
  export PATH="$HOME/.local/bin:$PATH"
fi
uv venv --quiet --allow-existing --python python3 "$venv" >&2
uv pip install --quiet --python "$venv/bin/python" -r "$req" >&2
echo "$want" > "$stamp"
