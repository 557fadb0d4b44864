# Shared by the venv scripts (Scripts/reference/setup_venv.sh, Scripts/extract/setup_venv.sh):
# source it, then call the functions. Messages name the calling script.

# venv_create VENV PYTHON: VENV exists afterwards (created with PYTHON ≥ 3.10 if missing).
venv_create() {
  local venv=$1 python=$2 script
  script=$(basename "$0")
  if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
    echo "$script: $python is $("$python" --version 2>&1); Python >= 3.10 is needed (set PYTHON=...)" >&2
    exit 1
  fi
  if [ ! -x "$venv/bin/python" ]; then
    echo "== creating $venv with $("$python" --version 2>&1)"
    "$python" -m venv "$venv" || {
      echo "$script: '$python -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
      exit 1
    }
  fi
}

# venv_has_pins VENV REQUIREMENTS…: succeeds when VENV has every pinned version (name==x.y).
venv_has_pins() {
  local venv=$1; shift
  "$venv/bin/python" - "$@" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for path in sys.argv[1:]:
    pins = [l.split("#")[0].strip() for l in open(path)]
    for pin in filter(None, pins):
        name, want = pin.split("==")
        if version(name).split("+")[0] != want:
            sys.exit(1)
PY
}
