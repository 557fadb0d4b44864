#!/usr/bin/env bash
# M8 tests: simulated hosts and surviving faults (Cluster/README.md). Scripts/test.sh sources
# this file and calls each test in its "M8" section; it also runs alone:
#
#   Cluster/fault-tests.sh [TEST…]      (default: all; tests are the m8_test_* names below
#                                        without the prefix, e.g. `Cluster/fault-tests.sh stall`)
#
# Each test prints "ok  NAME (Ns): what was seen", "SKIPPED: NAME: why" (never counted as
# passed) or "FAIL: NAME: …" with the job's output, and then exits 1. The debug build in
# `swift build --show-bin-path` is used. Every process a test starts is ended by its pid.

m8_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
m8_repository=$(dirname "$m8_here")
m8_skipped=()
m8_jobs=()

# m8_prepare BIN: a small corpus and the uninterrupted one-host two-rank reference run that
# the simulated-host and resume tests compare against.
m8_prepare() {
  m8_bin=$1
  # shellcheck source=../Scripts/mpi.sh
  source "$m8_repository/Scripts/mpi.sh"
  m8_work=$(mktemp -d "${TMPDIR:-/tmp}/vavl-m8.XXXXXX")
  trap m8_cleanup EXIT
  m8_corpus="$m8_work/corpus.h5"
  m8_run "corpus" 60 "$m8_bin/vavl" corpus synth --preset crema-d --output "$m8_corpus" --dims 24,20 --utterances 120 --seed 3 \
    || m8_fail "corpus" "vavl corpus synth failed" "$m8_log"
  # Two epochs of 11 global batches of 8; dropout on, synchronised BatchNorm (the defaults).
  m8_train=(train --corpus "$m8_corpus" --model tiny --epochs 2 --batch-size 8 --seed 5 --plain --log-every 1)
  m8_timer
  m8_run "reference run" 120 "${mpirun_cmd[@]}" -np 2 "$m8_bin/vavl" "${m8_train[@]}" --out "$m8_work/reference" \
    || m8_fail "reference run" "the uninterrupted two-rank run failed"
  m8_reference="$m8_work/reference/checkpoint-last.h5"
  m8_per_epoch=$(grep -m1 -o '"batches_per_epoch":[0-9]*' "$m8_work/reference/metrics.jsonl" | cut -d: -f2)
  echo "ok  reference run ($(m8_elapsed)s): one host, two ranks, 2 epochs of $m8_per_epoch batches"
}

m8_cleanup() {
  local pid
  for pid in "${m8_jobs[@]}"; do m8_end_job "$pid"; done
  [ -n "${m8_mount:-}" ] && umount "$m8_mount" 2>/dev/null
  [ -n "${m8_work:-}" ] && rm -rf "$m8_work"
  return 0
}

# MARK: - helpers

m8_timer() { m8_started=$(date +%s.%N); }
m8_elapsed() { m8_since "$m8_started"; }
m8_since() { awk -v start="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - start }'; }

m8_fail() {
  echo "FAIL: $1: $2"
  [ -n "${3:-}" ] && [ -f "$3" ] && sed 's/^/    /' "$3" | tail -40
  exit 1
}

m8_skip() {
  echo "SKIPPED: $1: $2"
  m8_skipped+=("$1")
}

# m8_run NAME SECONDS COMMAND…: runs to completion (output in $m8_log); status in $m8_status.
m8_run() {
  local name=$1 seconds=$2; shift 2
  m8_log="$m8_work/$(echo "$name" | tr ' /' '__').log"
  m8_status=0
  timeout "$seconds" "$@" >"$m8_log" 2>&1 || m8_status=$?
  return $m8_status
}

# m8_start NAME COMMAND…: starts a job in the background; its pid in $m8_job, output in $m8_log.
m8_start() {
  local name=$1; shift
  m8_log="$m8_work/$(echo "$name" | tr ' /' '__').log"
  "$@" >"$m8_log" 2>&1 &
  m8_job=$!
  m8_jobs+=("$m8_job")
}

# m8_wait_job PID SECONDS: waits for the job; $m8_status is its exit status, 124 if it is
# still running after SECONDS (it is then ended).
m8_wait_job() {
  local pid=$1 seconds=$2 deadline
  deadline=$(( $(date +%s) + seconds ))
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    m8_end_job "$pid"
    m8_status=124
    return
  fi
  m8_status=0
  wait "$pid" || m8_status=$?
}

# Ends a job we started and its ranks (continued first, in case a test stopped one).
m8_end_job() {
  local pid=$1 child
  kill -0 "$pid" 2>/dev/null || return 0
  for child in $(m8_children "$pid"); do kill -CONT "$child" 2>/dev/null; kill -KILL "$child" 2>/dev/null; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

# m8_rank_pid JOB RANK: the pid of RANK among the job's processes (one host: mpirun's children).
m8_rank_pid() {
  local job=$1 rank=$2 child
  for child in $(m8_children "$job"); do
    if tr '\0' '\n' <"/proc/$child/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$rank"; then
      echo "$child"; return
    fi
  done
}

# m8_iterations RUN: global iterations rank 0 has recorded in RUN/metrics.jsonl.
m8_iterations() {
  local count
  count=$(grep -c '"type":"iteration"' "$1/metrics.jsonl" 2>/dev/null) || true
  echo "${count:-0}"
}

# m8_alive PID: the process exists and is not a zombie (an orphaned rank's zombie may linger
# where no init process reaps it, as in some containers).
m8_alive() {
  local state
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# m8_children PID: the processes whose parent is PID (from /proc: no procps needed).
m8_children() {
  grep -l "^PPid:[[:space:]]*$1\$" /proc/[0-9]*/status 2>/dev/null | cut -d/ -f3 || true
}

# m8_wait_until SECONDS JOB COMMAND…: polls COMMAND until it succeeds; fails if the job ends first.
m8_wait_until() {
  local seconds=$1 job=$2 deadline; shift 2
  deadline=$(( $(date +%s) + seconds ))
  until "$@"; do
    kill -0 "$job" 2>/dev/null || return 1
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

# m8_freeze JOB / m8_thaw JOB: stop and continue every rank of a one-host job, so that a
# test acts at a known iteration however fast the steps are.
m8_freeze() { local rank; for rank in $(m8_children "$1"); do kill -STOP "$rank" 2>/dev/null || true; done; }
m8_thaw() { local rank; for rank in $(m8_children "$1"); do kill -CONT "$rank" 2>/dev/null || true; done; }

# m8_same NAME A B: the two checkpoints hold the same parameters, buffers and Adam state.
m8_same() {
  local name=$1 comparison="$m8_work/compare.log"
  if ! "$m8_bin/vavl-mpi-tests" compare-checkpoints "$2" "$3" --tolerance 0 >"$comparison" 2>&1; then
    m8_fail "$name" "the checkpoints differ: $2 vs $3" "$comparison"
  fi
  grep "^parameter" "$comparison" | sed 's/^parameter *//'
}

# MARK: - the tests

# Two simulated hosts (network namespaces, TCP only) give the one-host two-rank parameters.
m8_test_simulated_hosts() {
  local name="two simulated hosts over TCP" same
  m8_timer
  m8_run "$name" 120 "$m8_here/simulate-hosts.sh" run -n 2 -- "$m8_bin/vavl" "${m8_train[@]}" --out "$m8_work/hosts" || true
  if [ "$m8_status" -eq 77 ]; then
    m8_skip "$name" "$(grep -m1 SKIPPED "$m8_log" | sed 's/.*SKIPPED: //')"
    return 0
  fi
  [ "$m8_status" -eq 0 ] || m8_fail "$name" "the two-host run failed (exit $m8_status)" "$m8_log"
  same=$(m8_same "$name" "$m8_reference" "$m8_work/hosts/checkpoint-last.h5")
  echo "ok  $name ($(m8_elapsed)s): $(grep -m1 '^simulate-hosts:' "$m8_log" | cut -d: -f2- | sed 's/^ //'); vs one host: $same"
  # Across hosts mpirun tears the job down through the other host's daemon.
  name="stalled rank on two simulated hosts"
  m8_timer
  m8_run "$name" 30 "$m8_here/simulate-hosts.sh" run -n 2 -- "$m8_bin/vavl-mpi-tests" stall || true
  [ "$m8_status" -ne 0 ] && [ "$m8_status" -ne 124 ] && [ "$m8_status" -ne 77 ] \
    || m8_fail "$name" "exit $m8_status (0 = not detected, 124 = hang)" "$m8_log"
  grep -q "stalled: test step" "$m8_log" || m8_fail "$name" "no watchdog message" "$m8_log"
  echo "ok  $name ($(m8_elapsed)s): the watchdog's exit $m8_status ended the ranks on both hosts"
}

# A stalled rank is detected by the watchdog: a rank sleeping inside a step
# (vavl-mpi-tests stall), then a real training job whose rank 1 is frozen with SIGSTOP
# mid-epoch — rank 0's watchdog must name itself and the collective it waits in.
m8_test_stall() {
  local name="stalled rank" rank1
  m8_timer
  m8_start "$name sleep" "${mpirun_cmd[@]}" -np 2 "$m8_bin/vavl-mpi-tests" stall
  m8_wait_job "$m8_job" 30
  [ "$m8_status" -ne 0 ] && [ "$m8_status" -ne 124 ] || m8_fail "$name" "a rank sleeping in a step: exit $m8_status (0 = not detected, 124 = hang)" "$m8_log"
  grep -qE "rank 1 of 2: stalled: test step 8 .*waits in: a deliberate|rank 0 of 2: stalled: test step 9 .*waits in: MPI_Allreduce" "$m8_log" \
    || m8_fail "$name" "no watchdog message naming the sleeping rank or the collective the other waits in" "$m8_log"
  echo "ok  $name, sleeping in a step ($(m8_elapsed)s): exit $m8_status: $(grep -m1 'stalled:' "$m8_log" | cut -c1-150)…"

  m8_timer
  m8_start "$name frozen" "${mpirun_cmd[@]}" -np 2 "$m8_bin/vavl" "${m8_train[@]}" --epochs 3 --out "$m8_work/frozen" \
    --stall-factor 5 --stall-minimum-seconds 4
  local job=$m8_job frozen_at
  m8_wait_until 60 "$job" m8_at_least "$m8_work/frozen" 5 \
    || m8_fail "$name" "the job did not reach iteration 5" "$m8_log"
  m8_freeze "$job"
  frozen_at=$(m8_iterations "$m8_work/frozen")
  rank1=$(m8_rank_pid "$job" 1)
  [ -n "$rank1" ] || m8_fail "$name" "cannot find rank 1's pid" "$m8_log"
  [ "$frozen_at" -lt "$m8_per_epoch" ] || m8_fail "$name" "the steps outran the test: frozen at iteration $frozen_at, not mid-epoch" "$m8_log"
  kill -CONT "$(m8_rank_pid "$job" 0)"  # rank 1 stays frozen
  local stopped; stopped=$(date +%s.%N)
  m8_wait_job "$job" 30
  local detected; detected=$(m8_since "$stopped")
  sleep 1  # mpirun has continued (SIGCONT) and killed it; give the kernel a moment
  if m8_alive "$rank1"; then
    kill -CONT "$rank1"; kill -KILL "$rank1"
    m8_fail "$name" "the frozen rank 1 (pid $rank1) outlived the job" "$m8_log"
  fi
  [ "$m8_status" -ne 0 ] && [ "$m8_status" -ne 124 ] || m8_fail "$name" "rank 1 frozen: exit $m8_status (124 = hang)" "$m8_log"
  grep -q "rank 0 of 2: stalled: .*waits in: MPI_" "$m8_log" || m8_fail "$name" "rank 0 did not name the collective it waits in" "$m8_log"
  echo "ok  $name, rank 1 frozen by SIGSTOP at iteration $frozen_at ($(m8_elapsed)s): the job came down ${detected}s later, exit $m8_status:"
  echo "      $(grep -m1 'stalled:' "$m8_log" | sed 's/ Aborting the job.*//')"
}
m8_at_least() { [ "$(m8_iterations "$1")" -ge "$2" ]; }

# kill -9 of one rank mid-epoch brings the job down within 30 s; --resume then continues
# from the last checkpoint (the end of epoch 0) and ends with the uninterrupted run's parameters.
m8_test_killed_rank() {
  local name="rank killed mid-epoch" run="$m8_work/killed" rank1 killed_at
  m8_timer
  m8_start "$name" "${mpirun_cmd[@]}" -np 2 "$m8_bin/vavl" "${m8_train[@]}" --out "$run"
  local job=$m8_job
  m8_wait_until 90 "$job" m8_at_least "$run" $(( m8_per_epoch + 1 )) || m8_fail "$name" "the job did not reach epoch 1" "$m8_log"
  m8_freeze "$job"
  killed_at=$(m8_iterations "$run")
  [ -f "$run/checkpoint-last.h5" ] || m8_fail "$name" "no checkpoint after epoch 0" "$m8_log"
  [ "$killed_at" -lt $(( 2 * m8_per_epoch )) ] || m8_fail "$name" "the steps outran the test: stopped at iteration $killed_at" "$m8_log"
  rank1=$(m8_rank_pid "$job" 1)
  [ -n "$rank1" ] || m8_fail "$name" "cannot find rank 1's pid" "$m8_log"
  kill -KILL "$rank1"
  m8_thaw "$job"
  local start; start=$(date +%s.%N)
  m8_wait_job "$job" 30
  local down; down=$(m8_since "$start")
  [ "$m8_status" -ne 0 ] && [ "$m8_status" -ne 124 ] || m8_fail "$name" "exit $m8_status after kill -9 of rank 1 (124 = hang)" "$m8_log"
  grep -q "rank 1 .*signal 9" "$m8_log" || m8_fail "$name" "mpirun did not report rank 1's death" "$m8_log"
  echo "ok  $name ($(m8_elapsed)s): kill -9 of rank 1 at iteration $killed_at (epoch 1, batch $(( killed_at - m8_per_epoch )) of $m8_per_epoch): the job exited $m8_status ${down}s later"
  m8_resume "$name" "$run"
}

# m8_resume NAME RUN: --resume RUN finishes the run and matches the reference.
m8_resume() {
  local name="$1, then --resume" run=$2 same
  m8_timer
  m8_run "$name" 120 "${mpirun_cmd[@]}" -np 2 "$m8_bin/vavl" "${m8_train[@]}" --out "$run" --resume "$run" \
    || m8_fail "$name" "the resumed run failed (exit $m8_status)" "$m8_log"
  grep -q "resuming from .*epoch 1, iteration $m8_per_epoch, batch 0" "$m8_log" || m8_fail "$name" "did not resume from the end of epoch 0" "$m8_log"
  same=$(m8_same "$name" "$m8_reference" "$run/checkpoint-last.h5")
  echo "ok  $name ($(m8_elapsed)s): resumed at epoch 1, iteration $m8_per_epoch; vs the uninterrupted run: $same"
}

# Rank 0 dies half-way through replacing a checkpoint (VAVL_TEST_CRASH_DURING_CHECKPOINT=1):
# the job comes down, the half-written file is left, checkpoint-last.h5 still loads (vavl
# evaluate), and --resume ends with the uninterrupted run's parameters.
m8_test_checkpoint_crash() {
  local name="crash while writing a checkpoint" run="$m8_work/crashed" partial
  m8_timer
  m8_start "$name" env VAVL_TEST_CRASH_DURING_CHECKPOINT=1 "${mpirun_cmd[@]}" -np 2 "$m8_bin/vavl" "${m8_train[@]}" --out "$run"
  m8_wait_job "$m8_job" 60
  local crashed=$m8_status
  [ "$crashed" -ne 0 ] && [ "$crashed" -ne 124 ] || m8_fail "$name" "exit $crashed (0 = the hook did not fire, 124 = hang)" "$m8_log"
  grep -q "VAVL_TEST_CRASH_DURING_CHECKPOINT: dying while" "$m8_log" || m8_fail "$name" "the hook's message is missing" "$m8_log"
  partial=$(find "$run" -name '*.partial-*' | head -1)
  [ -n "$partial" ] || m8_fail "$name" "no half-written temporary file was left" "$m8_log"
  if "$m8_bin/vavl-mpi-tests" compare-checkpoints "$partial" "$partial" >/dev/null 2>&1; then
    m8_fail "$name" "the half-written file $partial loads: the hook did not cut it"
  fi
  m8_run "$name evaluate" 60 "$m8_bin/vavl" evaluate --checkpoint "$run/checkpoint-last.h5" --corpus "$m8_corpus" --split dev \
    || m8_fail "$name" "vavl evaluate cannot load the previous checkpoint-last.h5 (exit $m8_status)" "$m8_log"
  echo "ok  $name ($(m8_elapsed)s): rank 0 died writing $(basename "$partial") ($(stat -c %s "$partial") bytes left); the job exited $crashed; vavl evaluate loads the previous checkpoint-last.h5"
  m8_resume "$name" "$run"
}

# An unwritable output folder, a read-only file system and a full disk are each a clear
# error before training starts (no iteration runs).
m8_test_output_folder() {
  local name="unwritable output folder"
  m8_timer
  m8_expect_early_error "$name" "cannot create the output folder /proc/forbidden" /proc/forbidden/run
  local mount="$m8_work/mount"
  mkdir -p "$mount"
  if ! mount -t tmpfs -o size=2m,ro tmpfs "$mount" 2>"$m8_work/mount.err"; then
    m8_skip "read-only and full disk output folders" "cannot mount a tmpfs here ($(cat "$m8_work/mount.err")); checked by hand only"
    return 0
  fi
  m8_mount=$mount
  m8_expect_early_error "read-only output folder" "is not writable (or the disk is full)" "$mount"
  mount -o remount,rw "$mount"
  dd if=/dev/zero of="$mount/filler" bs=64k >/dev/null 2>&1 || true  # until the 2 MB are gone
  m8_expect_early_error "full disk" "is not writable (or the disk is full)" "$mount/run"
  umount "$mount"

  # The disk fills up after the first checkpoint: the next write fails, the job comes down
  # with a message naming the file, and the previous checkpoint still loads. The failing
  # write is the next checkpoint or rank 0's next line of metrics.jsonl, whichever needs a
  # new block first.
  name="disk fills during training"
  m8_timer
  mount -t tmpfs -o size=8m tmpfs "$mount"
  m8_start "$name" "${mpirun_cmd[@]}" -np 2 "$m8_bin/vavl" "${m8_train[@]}" --out "$mount/run"
  local job=$m8_job
  m8_wait_until 90 "$job" test -f "$mount/run/checkpoint-last.h5" || m8_fail "$name" "no checkpoint after epoch 0" "$m8_log"
  m8_freeze "$job"
  dd if=/dev/zero of="$mount/filler" bs=64k >/dev/null 2>&1 || true
  m8_thaw "$job"
  m8_wait_job "$job" 60
  [ "$m8_status" -ne 0 ] && [ "$m8_status" -ne 124 ] || m8_fail "$name" "exit $m8_status (0 = finished on a full disk?, 124 = hang)" "$m8_log"
  local failed=$m8_status cause
  cause=$(grep -m1 -E "writing checkpoint|cannot write|Fatal error" "$m8_log" | cut -c1-130) || m8_fail "$name" "no message naming the failed write" "$m8_log"
  rm -f "$mount/filler"
  m8_run "$name evaluate" 60 "$m8_bin/vavl" evaluate --checkpoint "$mount/run/checkpoint-last.h5" --corpus "$m8_corpus" --split dev \
    || m8_fail "$name" "the previous checkpoint-last.h5 does not load (exit $m8_status)" "$m8_log"
  echo "ok  $name ($(m8_elapsed)s): exit $failed, $cause…; the previous checkpoint-last.h5 loads"
  umount "$mount"; m8_mount=""
}

# m8_expect_early_error NAME MESSAGE OUT: two-rank training into OUT fails within 30 s with
# MESSAGE and without running an iteration.
m8_expect_early_error() {
  local name=$1 message=$2 out=$3 start
  start=$(date +%s.%N)
  m8_run "$name" 30 "${mpirun_cmd[@]}" -np 2 "$m8_bin/vavl" "${m8_train[@]}" --out "$out" || true
  [ "$m8_status" -ne 0 ] && [ "$m8_status" -ne 124 ] || m8_fail "$name" "exit $m8_status (0 = trained anyway, 124 = hang)" "$m8_log"
  grep -q -- "$message" "$m8_log" || m8_fail "$name" "the message '$message' is missing" "$m8_log"
  ! grep -q "^epoch " "$m8_log" || m8_fail "$name" "training started before the error" "$m8_log"
  echo "ok  $name ($(m8_since "$start")s, exit $m8_status, before any iteration): $(grep -m1 -- "$message" "$m8_log" | cut -c1-140)"
}

# MARK: - alone

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$m8_repository"
  m8_prepare "$(swift build --show-bin-path)"
  tests=("$@")
  [ ${#tests[@]} -gt 0 ] || tests=(simulated_hosts stall killed_rank checkpoint_crash output_folder)
  for test in "${tests[@]}"; do "m8_test_$test"; done
  if [ ${#m8_skipped[@]} -gt 0 ]; then echo "M8: passed, SKIPPED: ${m8_skipped[*]}"; else echo "M8: all passed"; fi
fi
