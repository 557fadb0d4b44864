#!/usr/bin/env bash
# Creates .venv-reference/ in the repository root with the pinned packages of
# requirements.txt (torch, numpy, h5py, safetensors). Idempotent: an existing venv that
# already has the pinned versions is left alone. pip honours PIP_INDEX_URL /
# PIP_EXTRA_INDEX_URL if you want a CPU-only torch wheel from another index.
#
#   Scripts/reference/setup_venv.sh && .venv-reference/bin/python Scripts/reference/make_fixtures.py
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-reference
requirements=Scripts/reference/requirements.txt
python=${PYTHON:-python3}

if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
  echo "setup_venv.sh: $python is $("$python" --version 2>&1); Python >= 3.10 is needed (set PYTHON=...)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv" || {
    echo "setup_venv.sh: '$python -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
    exit 1
  }
fi
if "$venv/bin/python" - "$requirements" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
pins = [l.split("#")[0].strip() for l in open(sys.argv[1])]
for pin in filter(None, pins):
    name, want = pin.split("==")
    if version(name).split("+")[0] != want:
        sys.exit(1)
PY
  echo "== $venv already has the pinned packages"
else
  echo "== installing $requirements into $venv"
  "$venv/bin/python" -m pip install --upgrade pip
  "$venv/bin/python" -m pip install -r "$requirements"
fi
"$venv/bin/python" -c 'import torch, numpy, h5py, safetensors; print("torch", torch.__version__, "numpy", numpy.__version__, "h5py", h5py.__version__, "(HDF5", h5py.version.hdf5_version + ")")'
