#!/usr/bin/env bash
# Creates .venv-extract/ in the repository root with the pinned packages of requirements.txt
# (torch, torchvision, transformers, PyAV, OpenCV, numpy, tqdm); with --test also those of
# requirements-test.txt (pytest, scikit-image). Idempotent: an existing venv that already has
# the pinned versions is left alone.
#
# torch comes from the CPU-only wheel index (TORCH_INDEX, default
# https://download.pytorch.org/whl/cpu) when that index answers, else from plain PyPI, whose
# Linux x86-64 wheel pulls the CUDA libraries (a few GB; works on CPU too). Set TORCH_INDEX=
# (empty) to always use PyPI only. pip honours PIP_INDEX_URL / PIP_EXTRA_INDEX_URL as usual.
#
#   Scripts/extract/setup_venv.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${EXTRACT_VENV:-.venv-extract}
python=${PYTHON:-python3}
reqs=(Scripts/extract/requirements.txt)
[ "${1:-}" = "--test" ] && reqs+=(Scripts/extract/requirements-test.txt)
torch_index=${TORCH_INDEX-https://download.pytorch.org/whl/cpu}

source Scripts/lib/venv.sh
venv_create "$venv" "$python"
[ -e "$venv/.gitignore" ] || echo '*' > "$venv/.gitignore"   # keep the venv out of git
if venv_has_pins "$venv" "${reqs[@]}"; then
  echo "== $venv already has the pinned packages"
else
  extra=()
  if [ -n "$torch_index" ] && "$python" - "$torch_index" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=10).read(1)
PY
    echo "== $torch_index answers: CPU-only torch wheels"
    extra=(--extra-index-url "$torch_index")
  else
    echo "== ${torch_index:-the CPU wheel index} not used: torch from PyPI (with CUDA libraries, a few GB)"
  fi
  echo "== installing ${reqs[*]} into $venv"
  "$venv/bin/python" -m pip install --upgrade pip
  args=()
  for r in "${reqs[@]}"; do args+=(-r "$r"); done
  "$venv/bin/python" -m pip install "${extra[@]}" "${args[@]}"
fi
"$venv/bin/python" -c 'import torch, torchvision, transformers, av, cv2, numpy; print("torch", torch.__version__, "torchvision", torchvision.__version__, "transformers", transformers.__version__, "av", av.__version__, "opencv", cv2.__version__, "numpy", numpy.__version__)'
