# Sourced by the scripts: the project venv supplies Python and libtorch
# (tch is built with LIBTORCH_USE_PYTORCH=1 against the venv's torch 2.11.0).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DAK_VENV="${DAK_VENV:-$root/.venv}"
export DAK_PYTHON="$DAK_VENV/bin/python"
export LIBTORCH_USE_PYTORCH=1
export LIBTORCH_BYPASS_VERSION_CHECK="${LIBTORCH_BYPASS_VERSION_CHECK:-0}"
export PATH="$DAK_VENV/bin:$PATH"
torch_lib="$DAK_VENV/lib/python3.11/site-packages/torch/lib"
if [[ -d "$torch_lib" ]]; then
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
