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
[ -e "$venv/.gitignore" ] || echo '*' > "$venv/.gitignore"   # keep the venv out of git
if "$venv/bin/python" - "${reqs[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
for path in sys.argv[1:]:
    pins = [l.split("#")[0].strip() for l in open(path)]
    for pin in filter(None, pins):
        name, want = pin.split("==")
        if version(name).split("+")[0] != want:
            sys.exit(1)
PY
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
