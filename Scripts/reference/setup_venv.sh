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

source Scripts/lib/venv.sh
venv_create "$venv" "$python"
if venv_has_pins "$venv" "$requirements"; then
  echo "== $venv already has the pinned packages"
else
  echo "== installing $requirements into $venv"
  "$venv/bin/python" -m pip install --upgrade pip
  "$venv/bin/python" -m pip install -r "$requirements"
fi
"$venv/bin/python" -c 'import torch, numpy, h5py, safetensors; print("torch", torch.__version__, "numpy", numpy.__version__, "h5py", h5py.__version__, "(HDF5", h5py.version.hdf5_version + ")")'
