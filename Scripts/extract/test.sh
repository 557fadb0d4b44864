#!/usr/bin/env bash
# Tests of the extraction tool (Scripts/extract/): sets up .venv-extract/ with the test
# packages (setup_venv.sh --test; idempotent) and runs test_extract.py with pytest.
# No weights are downloaded: the tests build tiny random models of the real classes.
#
#   Scripts/extract/test.sh [pytest args]      VAVL=path/to/vavl for the round trip
#                                              (default .build/release/vavl, else PATH;
#                                              that test is skipped without one)
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS
# espeak-ng speaks the test utterance (the tests fall back to a synthetic tone without it)
if ! command -v espeak-ng >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing espeak-ng"
  { apt-get install -y -qq espeak-ng >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null; }; } ||
    echo "test.sh: espeak-ng could not be installed; the tests use a synthetic tone"
fi
Scripts/extract/setup_venv.sh --test
echo "== setup took $((SECONDS - start)) s"
status=0
.venv-extract/bin/python -m pytest -q -p no:cacheprovider Scripts/extract/test_extract.py "$@" || status=$?
echo "== Scripts/extract/test.sh took $((SECONDS - start)) s (exit $status)"
exit $status
