#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every unit test and then the
# multi-rank tests under mpirun. Any failure exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/mpi.sh

Scripts/setup.sh

echo "== build"
swift build --build-tests

echo "== unit tests"
swift test --skip-build --parallel --num-workers 2

bin=$(swift build --show-bin-path)

echo "== two-rank tests"
timeout 300 "${mpirun_cmd[@]}" -np 2 "$bin/vavl-mpi-tests"

echo "== harness self-test: a failing rank must bring the job down within 30 s"
set +e
start=$(date +%s)
timeout 30 "${mpirun_cmd[@]}" -np 2 "$bin/vavl-mpi-tests" --fail-rank 1 >/tmp/vavl-harness.log 2>&1
status=$?
set -e
elapsed=$(( $(date +%s) - start ))
if [ $status -eq 0 ] || [ $status -eq 124 ]; then
  echo "FAIL: a deliberately failing rank gave exit $status after ${elapsed}s (0 = not detected, 124 = hang)"
  cat /tmp/vavl-harness.log
  exit 1
fi
grep -q "deliberate failure" /tmp/vavl-harness.log || { echo "FAIL: the failing rank's message is missing"; cat /tmp/vavl-harness.log; exit 1; }
echo "ok  failing rank brought the job down (exit $status) in ${elapsed}s"

echo "== all tests passed"
