#!/usr/bin/env bash
# The slow checks of `vavl experiment`, too slow for the debug unit tests:
#  - on a synthetic corpus where audio carries the stronger signal, spread over many noisy
#    frames, the robustness sweep shows the audio-visual head falling as audio frames are
#    masked and the video-only line crossing it (the shape of the paper's Figs. 2-3);
#  - the sweep gives the same scores on two ranks as on one, and the unimodal baselines
#    train data-parallel with one process's global-batch semantics.
# The assertions live in Tests/TrainingTests/RobustnessTrendTests.swift (skipped unless
# VAVL_EXPERIMENTS_CHECK=1); the training and the sweeps run the release `vavl` binary.
# About a minute of CPU after the builds. On a shared machine run it under the build lock
# (flock /tmp/vavl-build.lock Scripts/experiments-check.sh); it takes no lock itself.
#
# Usage: Scripts/experiments-check.sh [--debug]   (--debug: use the debug binary, ~8x slower)
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/mpi.sh

if [ "${1:-}" = "--debug" ]; then
  bin=$(swift build --show-bin-path)
else
  echo "== release build of vavl"
  swift build -c release --product vavl
  bin=$(swift build -c release --show-bin-path)
fi
echo "== test build"
swift build --build-tests

echo "== robustness trend (paper Figs. 2-3) and two-rank agreement, with $bin/vavl"
log=$(mktemp)
set +e
VAVL_EXPERIMENTS_CHECK=1 VAVL_BIN="$bin/vavl" VAVL_MPIRUN="${mpirun_cmd[*]}" \
  swift test --skip-build --filter 'TrainingTests.RobustnessTrendTests' 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ] || grep -q "skipped" "$log" || ! grep -q "Executed 1 test, with 0 failures" "$log"; then
  echo "FAIL: experiments check (exit $status)"; rm -f "$log"; exit 1
fi
rm -f "$log"
echo "== experiments check passed"
