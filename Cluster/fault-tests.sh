#!/usr/bin/env bash
# The cluster and fault tests: simulated hosts and surviving faults (Cluster/README.md). Scripts/test.sh sources
# this file and calls each test in its "clusters" section; it also runs alone:
#
#   Cluster/fault-tests.sh [TEST…]      (default: all; tests are the cluster_test_* names below
#                                        without the prefix, e.g. `Cluster/fault-tests.sh stall`)
#
# Each test prints "ok  NAME (Ns): what was seen", "SKIPPED: NAME: why" (never counted as
# passed) or "FAIL: NAME: …" with the job's output, and then exits 1. The debug build in
# `swift build --show-bin-path` is used. Every process a test starts is ended by its pid.

cluster_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cluster_repository=$(dirname "$cluster_here")
cluster_skipped=()
cluster_jobs=()

# cluster_prepare BIN: a small corpus and the uninterrupted one-host two-rank reference run that
# the simulated-host and resume tests compare against.
cluster_prepare() {
  cluster_bin=$1
  # shellcheck source=../Scripts/mpi.sh
  source "$cluster_repository/Scripts/mpi.sh"
  cluster_work=$(mktemp -d "${TMPDIR:-/tmp}/vavl-cluster.XXXXXX")
  trap cluster_cleanup EXIT
  cluster_corpus="$cluster_work/corpus.h5"
  cluster_run "corpus" 60 "$cluster_bin/vavl" corpus synth --preset crema-d --output "$cluster_corpus" --dims 24,20 --utterances 120 --seed 3 \
    || cluster_fail "corpus" "vavl corpus synth failed" "$cluster_log"
  # Two epochs of 11 global batches of 8; dropout on, synchronised BatchNorm (the defaults).
  cluster_train=(train --corpus "$cluster_corpus" --model tiny --epochs 2 --batch-size 8 --seed 5 --plain --log-every 1)
  cluster_timer
  cluster_run "reference run" 120 "${mpirun_cmd[@]}" -np 2 "$cluster_bin/vavl" "${cluster_train[@]}" --out "$cluster_work/reference" \
    || cluster_fail "reference run" "the uninterrupted two-rank run failed"
  cluster_reference="$cluster_work/reference/checkpoint-last.h5"
  cluster_per_epoch=$(grep -m1 -o '"batches_per_epoch":[0-9]*' "$cluster_work/reference/metrics.jsonl" | cut -d: -f2)
  echo "ok  reference run ($(cluster_elapsed)s): one host, two ranks, 2 epochs of $cluster_per_epoch batches"
}

cluster_cleanup() {
  local pid
  for pid in "${cluster_jobs[@]}"; do cluster_end_job "$pid"; done
  [ -n "${cluster_mount:-}" ] && umount "$cluster_mount" 2>/dev/null
  [ -n "${cluster_work:-}" ] && rm -rf "$cluster_work"
  return 0
}

# MARK: - helpers

cluster_timer() { cluster_started=$(date +%s.%N); }
cluster_elapsed() { cluster_since "$cluster_started"; }
cluster_since() { awk -v start="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - start }'; }

cluster_fail() {
  echo "FAIL: $1: $2"
  [ -n "${3:-}" ] && [ -f "$3" ] && sed 's/^/    /' "$3" | tail -40
  exit 1
}

cluster_skip() {
  echo "SKIPPED: $1: $2"
  cluster_skipped+=("$1")
}

# cluster_run NAME SECONDS COMMAND…: runs to completion (output in $cluster_log); status in $cluster_status.
cluster_run() {
  local name=$1 seconds=$2; shift 2
  cluster_log="$cluster_work/$(echo "$name" | tr ' /' '__').log"
  cluster_status=0
  timeout "$seconds" "$@" >"$cluster_log" 2>&1 || cluster_status=$?
  return $cluster_status
}

# cluster_start NAME COMMAND…: starts a job in the background; its pid in $cluster_job, output in $cluster_log.
cluster_start() {
  local name=$1; shift
  cluster_log="$cluster_work/$(echo "$name" | tr ' /' '__').log"
  "$@" >"$cluster_log" 2>&1 &
  cluster_job=$!
  cluster_jobs+=("$cluster_job")
}

# cluster_wait_job PID SECONDS: waits for the job; $cluster_status is its exit status, 124 if it is
# still running after SECONDS (it is then ended).
cluster_wait_job() {
  local pid=$1 seconds=$2 deadline
  deadline=$(( $(date +%s) + seconds ))
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    cluster_end_job "$pid"
    cluster_status=124
    return
  fi
  cluster_status=0
  wait "$pid" || cluster_status=$?
}

# Ends a job we started and its ranks (continued first, in case a test stopped one).
cluster_end_job() {
  local pid=$1 child
  kill -0 "$pid" 2>/dev/null || return 0
  for child in $(cluster_children "$pid"); do kill -CONT "$child" 2>/dev/null; kill -KILL "$child" 2>/dev/null; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

# cluster_rank_pid JOB RANK: the pid of RANK among the job's processes (one host: mpirun's children).
cluster_rank_pid() {
  local job=$1 rank=$2 child
  for child in $(cluster_children "$job"); do
    if tr '\0' '\n' <"/proc/$child/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$rank"; then
      echo "$child"; return
    fi
  done
}

# cluster_iterations RUN: global iterations rank 0 has recorded in RUN/metrics.jsonl.
cluster_iterations() {
  local count
  count=$(grep -c '"type":"iteration"' "$1/metrics.jsonl" 2>/dev/null) || true
  echo "${count:-0}"
}

# cluster_alive PID: the process exists and is not a zombie (an orphaned rank's zombie may linger
# where no init process reaps it, as in some containers).
cluster_alive() {
  local state
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# cluster_children PID: the processes whose parent is PID (from /proc: no procps needed).
cluster_children() {
  grep -l "^PPid:[[:space:]]*$1\$" /proc/[0-9]*/status 2>/dev/null | cut -d/ -f3 || true
}

# cluster_wait_until SECONDS JOB COMMAND…: polls COMMAND until it succeeds; fails if the job ends first.
cluster_wait_until() {
  local seconds=$1 job=$2 deadline; shift 2
  deadline=$(( $(date +%s) + seconds ))
  until "$@"; do
    kill -0 "$job" 2>/dev/null || return 1
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

# cluster_freeze JOB / cluster_thaw JOB: stop and continue every rank of a one-host job, so that a
# test acts at a known iteration however fast the steps are.
cluster_freeze() { local rank; for rank in $(cluster_children "$1"); do kill -STOP "$rank" 2>/dev/null || true; done; }
cluster_thaw() { local rank; for rank in $(cluster_children "$1"); do kill -CONT "$rank" 2>/dev/null || true; done; }

# cluster_same NAME A B: the two checkpoints hold the same parameters, buffers and Adam state.
cluster_same() {
  local name=$1 comparison="$cluster_work/compare.log"
  if ! "$cluster_bin/vavl-mpi-tests" compare-checkpoints "$2" "$3" --tolerance 0 >"$comparison" 2>&1; then
    cluster_fail "$name" "the checkpoints differ: $2 vs $3" "$comparison"
  fi
  grep "^parameter" "$comparison" | sed 's/^parameter *//'
}

# MARK: - the tests

# Two simulated hosts (network namespaces, TCP only) give the one-host two-rank parameters.
cluster_test_simulated_hosts() {
  local name="two simulated hosts over TCP" same
  cluster_timer
  cluster_run "$name" 120 "$cluster_here/simulate-hosts.sh" run -n 2 -- "$cluster_bin/vavl" "${cluster_train[@]}" --out "$cluster_work/hosts" || true
  if [ "$cluster_status" -eq 77 ]; then
    cluster_skip "$name" "$(grep -m1 SKIPPED "$cluster_log" | sed 's/.*SKIPPED: //')"
    return 0
  fi
  [ "$cluster_status" -eq 0 ] || cluster_fail "$name" "the two-host run failed (exit $cluster_status)" "$cluster_log"
  same=$(cluster_same "$name" "$cluster_reference" "$cluster_work/hosts/checkpoint-last.h5")
  echo "ok  $name ($(cluster_elapsed)s): $(grep -m1 '^simulate-hosts:' "$cluster_log" | cut -d: -f2- | sed 's/^ //'); vs one host: $same"
  # Across hosts mpirun tears the job down through the other host's daemon.
  name="stalled rank on two simulated hosts"
  cluster_timer
  cluster_run "$name" 30 "$cluster_here/simulate-hosts.sh" run -n 2 -- "$cluster_bin/vavl-mpi-tests" stall || true
  [ "$cluster_status" -ne 0 ] && [ "$cluster_status" -ne 124 ] && [ "$cluster_status" -ne 77 ] \
    || cluster_fail "$name" "exit $cluster_status (0 = not detected, 124 = hang)" "$cluster_log"
  grep -q "stalled: test step" "$cluster_log" || cluster_fail "$name" "no watchdog message" "$cluster_log"
  echo "ok  $name ($(cluster_elapsed)s): the watchdog's exit $cluster_status ended the ranks on both hosts"
}

# A stalled rank is detected by the watchdog: a rank sleeping inside a step
# (vavl-mpi-tests stall), then a real training job whose rank 1 is frozen with SIGSTOP
# mid-epoch — rank 0's watchdog must name itself and the collective it waits in.
cluster_test_stall() {
  local name="stalled rank" rank1
  cluster_timer
  cluster_start "$name sleep" "${mpirun_cmd[@]}" -np 2 "$cluster_bin/vavl-mpi-tests" stall
  cluster_wait_job "$cluster_job" 30
  [ "$cluster_status" -ne 0 ] && [ "$cluster_status" -ne 124 ] || cluster_fail "$name" "a rank sleeping in a step: exit $cluster_status (0 = not detected, 124 = hang)" "$cluster_log"
  grep -qE "rank 1 of 2: stalled: test step 8 .*waits in: a deliberate|rank 0 of 2: stalled: test step 9 .*waits in: MPI_Allreduce" "$cluster_log" \
    || cluster_fail "$name" "no watchdog message naming the sleeping rank or the collective the other waits in" "$cluster_log"
  echo "ok  $name, sleeping in a step ($(cluster_elapsed)s): exit $cluster_status: $(grep -m1 'stalled:' "$cluster_log" | cut -c1-150)…"

  cluster_timer
  cluster_start "$name frozen" "${mpirun_cmd[@]}" -np 2 "$cluster_bin/vavl" "${cluster_train[@]}" --epochs 3 --out "$cluster_work/frozen" \
    --stall-factor 5 --stall-minimum-seconds 4
  local job=$cluster_job frozen_at
  cluster_wait_until 60 "$job" cluster_at_least "$cluster_work/frozen" 5 \
    || cluster_fail "$name" "the job did not reach iteration 5" "$cluster_log"
  cluster_freeze "$job"
  frozen_at=$(cluster_iterations "$cluster_work/frozen")
  rank1=$(cluster_rank_pid "$job" 1)
  [ -n "$rank1" ] || cluster_fail "$name" "cannot find rank 1's pid" "$cluster_log"
  [ "$frozen_at" -lt "$cluster_per_epoch" ] || cluster_fail "$name" "the steps outran the test: frozen at iteration $frozen_at, not mid-epoch" "$cluster_log"
  kill -CONT "$(cluster_rank_pid "$job" 0)"  # rank 1 stays frozen
  local stopped; stopped=$(date +%s.%N)
  cluster_wait_job "$job" 30
  local detected; detected=$(cluster_since "$stopped")
  sleep 1  # mpirun has continued (SIGCONT) and killed it; give the kernel a moment
  if cluster_alive "$rank1"; then
    kill -CONT "$rank1"; kill -KILL "$rank1"
    cluster_fail "$name" "the frozen rank 1 (pid $rank1) outlived the job" "$cluster_log"
  fi
  [ "$cluster_status" -ne 0 ] && [ "$cluster_status" -ne 124 ] || cluster_fail "$name" "rank 1 frozen: exit $cluster_status (124 = hang)" "$cluster_log"
  grep -q "rank 0 of 2: stalled: .*waits in: MPI_" "$cluster_log" || cluster_fail "$name" "rank 0 did not name the collective it waits in" "$cluster_log"
  echo "ok  $name, rank 1 frozen by SIGSTOP at iteration $frozen_at ($(cluster_elapsed)s): the job came down ${detected}s later, exit $cluster_status:"
  echo "      $(grep -m1 'stalled:' "$cluster_log" | sed 's/ Aborting the job.*//')"
}
cluster_at_least() { [ "$(cluster_iterations "$1")" -ge "$2" ]; }

# kill -9 of one rank mid-epoch brings the job down within 30 s; --resume then continues
# from the last checkpoint (the end of epoch 0) and ends with the uninterrupted run's parameters.
cluster_test_killed_rank() {
  local name="rank killed mid-epoch" run="$cluster_work/killed" rank1 killed_at
  cluster_timer
  cluster_start "$name" "${mpirun_cmd[@]}" -np 2 "$cluster_bin/vavl" "${cluster_train[@]}" --out "$run"
  local job=$cluster_job
  cluster_wait_until 90 "$job" cluster_at_least "$run" $(( cluster_per_epoch + 1 )) || cluster_fail "$name" "the job did not reach epoch 1" "$cluster_log"
  cluster_freeze "$job"
  killed_at=$(cluster_iterations "$run")
  [ -f "$run/checkpoint-last.h5" ] || cluster_fail "$name" "no checkpoint after epoch 0" "$cluster_log"
  [ "$killed_at" -lt $(( 2 * cluster_per_epoch )) ] || cluster_fail "$name" "the steps outran the test: stopped at iteration $killed_at" "$cluster_log"
  rank1=$(cluster_rank_pid "$job" 1)
  [ -n "$rank1" ] || cluster_fail "$name" "cannot find rank 1's pid" "$cluster_log"
  kill -KILL "$rank1"
  cluster_thaw "$job"
  local start; start=$(date +%s.%N)
  cluster_wait_job "$job" 30
  local down; down=$(cluster_since "$start")
  [ "$cluster_status" -ne 0 ] && [ "$cluster_status" -ne 124 ] || cluster_fail "$name" "exit $cluster_status after kill -9 of rank 1 (124 = hang)" "$cluster_log"
  grep -q "rank 1 .*signal 9" "$cluster_log" || cluster_fail "$name" "mpirun did not report rank 1's death" "$cluster_log"
  echo "ok  $name ($(cluster_elapsed)s): kill -9 of rank 1 at iteration $killed_at (epoch 1, batch $(( killed_at - cluster_per_epoch )) of $cluster_per_epoch): the job exited $cluster_status ${down}s later"
  cluster_resume "$name" "$run"
}

# A graceful stop: SIGUSR1 to mpirun (as Slurm sends it before a time limit) reaches the
# ranks, which stop after the same iteration with checkpoint-last.h5 written there and exit 85
# ("stopped, resume me"); --resume then ends with the uninterrupted run's parameters. The
# second run asks only rank 1 to stop (VAVL_TEST_STOP_AT): both ranks must still stop after
# the same iteration, which the exact match after resuming shows.
cluster_test_stop_signal() {
  local name="SIGUSR1 mid-epoch" run="$cluster_work/signalled" stopped
  cluster_timer
  cluster_start "$name" "${mpirun_cmd[@]}" -np 2 "$cluster_bin/vavl" "${cluster_train[@]}" --out "$run"
  local job=$cluster_job
  cluster_wait_until 90 "$job" cluster_at_least "$run" $(( cluster_per_epoch + 1 )) || cluster_fail "$name" "the job did not reach epoch 1" "$cluster_log"
  cluster_freeze "$job"
  kill -USR1 "$job"
  cluster_thaw "$job"
  cluster_wait_job "$job" 30
  [ "$cluster_status" -eq 85 ] || cluster_fail "$name" "exit $cluster_status, expected 85 (stopped to be resumed)" "$cluster_log"
  stopped=$(grep -m1 -o 'stopped by a signal after iteration [0-9]*' "$cluster_log" | grep -o '[0-9]*$') \
    || cluster_fail "$name" "no stop message" "$cluster_log"
  echo "ok  $name ($(cluster_elapsed)s): every rank stopped after iteration $stopped, exit 85"
  cluster_resume_exactly "$name" "$run"

  name="stop asked of rank 1 only"
  run="$cluster_work/stop-rank1"
  cluster_timer
  VAVL_TEST_STOP_AT=$(( cluster_per_epoch + 3 )):1 cluster_run "$name" 120 "${mpirun_cmd[@]}" -np 2 "$cluster_bin/vavl" \
    "${cluster_train[@]}" --out "$run" || true
  [ "$cluster_status" -eq 85 ] || cluster_fail "$name" "exit $cluster_status, expected 85" "$cluster_log"
  grep -q "stopped by a signal after iteration $(( cluster_per_epoch + 4 ))" "$cluster_log" \
    || cluster_fail "$name" "did not stop after iteration $(( cluster_per_epoch + 4 ))" "$cluster_log"
  echo "ok  $name ($(cluster_elapsed)s): both ranks stopped after iteration $(( cluster_per_epoch + 4 )), exit 85"
  cluster_resume_exactly "$name" "$run"

  # A USR1 that arrives while the process is still starting (Slurm sends it at once to a
  # requeued job with less than its warning time left) is kept, not fatal: one process,
  # signalled as soon as it catches SIGUSR1 (the first thing `vavl train` does, before
  # parsing, MPI, the corpus and the model), stops after its first iteration. (Before that —
  # the dynamic loader's few milliseconds — the default action still applies.)
  name="SIGUSR1 during start-up"
  run="$cluster_work/early-signal"
  cluster_timer
  cluster_start "$name" "$cluster_bin/vavl" "${cluster_train[@]}" --out "$run"
  # Until the exec, the job is a fork of this shell, whose handlers (bash's own, or a trap of
  # whoever runs the tests) it still holds: wait for vavl's name first, then for its handler.
  local caught="" waited name_seen=""
  for waited in $(seq 1 2000); do
    if [ -z "$name_seen" ]; then
      [ "$(awk '/^Name:/ { print $2 }' "/proc/$cluster_job/status" 2>/dev/null)" = vavl ] && name_seen=yes
    else
      caught=$(awk '/^SigCgt:/ { print $2 }' "/proc/$cluster_job/status" 2>/dev/null) || true
      [ -n "$caught" ] && (( 0x$caught & 0x200 )) && break  # bit 9: SIGUSR1 (10) has a handler
      caught=""
    fi
    sleep 0.005
  done
  [ -n "$caught" ] || cluster_fail "$name" "the process never installed its SIGUSR1 handler" "$cluster_log"
  kill -USR1 "$cluster_job"
  cluster_wait_job "$cluster_job" 60
  [ "$cluster_status" -eq 85 ] || cluster_fail "$name" "exit $cluster_status, expected 85 (stopped to be resumed)" "$cluster_log"
  grep -q "stopped by a signal after iteration 1" "$cluster_log" || cluster_fail "$name" "did not stop after iteration 1" "$cluster_log"
  echo "ok  $name ($(cluster_elapsed)s): kept, stopped after iteration 1, exit 85"
}

# cluster_resume_exactly NAME RUN: --resume RUN (from wherever it stopped) finishes the run and
# matches the reference bit for bit.
cluster_resume_exactly() {
  local name="$1, then --resume" run=$2 same
  cluster_timer
  cluster_run "$name" 120 "${mpirun_cmd[@]}" -np 2 "$cluster_bin/vavl" "${cluster_train[@]}" --out "$run" --resume "$run" \
    || cluster_fail "$name" "the resumed run failed (exit $cluster_status)" "$cluster_log"
  same=$(cluster_same "$name" "$cluster_reference" "$run/checkpoint-last.h5")
  echo "ok  $name ($(cluster_elapsed)s): $(grep -m1 -o 'resuming from .*batch [0-9]* of the epoch' "$cluster_log" | sed 's/resuming from [^:]*: //'); vs the uninterrupted run: $same"
}

# cluster_resume NAME RUN: --resume RUN finishes the run and matches the reference.
cluster_resume() {
  local name="$1, then --resume" run=$2 same
  cluster_timer
  cluster_run "$name" 120 "${mpirun_cmd[@]}" -np 2 "$cluster_bin/vavl" "${cluster_train[@]}" --out "$run" --resume "$run" \
    || cluster_fail "$name" "the resumed run failed (exit $cluster_status)" "$cluster_log"
  grep -q "resuming from .*epoch 1, iteration $cluster_per_epoch, batch 0" "$cluster_log" || cluster_fail "$name" "did not resume from the end of epoch 0" "$cluster_log"
  same=$(cluster_same "$name" "$cluster_reference" "$run/checkpoint-last.h5")
  echo "ok  $name ($(cluster_elapsed)s): resumed at epoch 1, iteration $cluster_per_epoch; vs the uninterrupted run: $same"
}

# Rank 0 dies half-way through replacing a checkpoint (VAVL_TEST_CRASH_DURING_CHECKPOINT=1):
# the job comes down, the half-written file is left, checkpoint-last.h5 still loads (vavl
# evaluate), and --resume ends with the uninterrupted run's parameters.
cluster_test_checkpoint_crash() {
  local name="crash while writing a checkpoint" run="$cluster_work/crashed" partial
  cluster_timer
  cluster_start "$name" env VAVL_TEST_CRASH_DURING_CHECKPOINT=1 "${mpirun_cmd[@]}" -np 2 "$cluster_bin/vavl" "${cluster_train[@]}" --out "$run"
  cluster_wait_job "$cluster_job" 60
  local crashed=$cluster_status
  [ "$crashed" -ne 0 ] && [ "$crashed" -ne 124 ] || cluster_fail "$name" "exit $crashed (0 = the hook did not fire, 124 = hang)" "$cluster_log"
  grep -q "VAVL_TEST_CRASH_DURING_CHECKPOINT: dying while" "$cluster_log" || cluster_fail "$name" "the hook's message is missing" "$cluster_log"
  partial=$(find "$run" -name '*.partial-*' | head -1)
  [ -n "$partial" ] || cluster_fail "$name" "no half-written temporary file was left" "$cluster_log"
  if "$cluster_bin/vavl-mpi-tests" compare-checkpoints "$partial" "$partial" >/dev/null 2>&1; then
    cluster_fail "$name" "the half-written file $partial loads: the hook did not cut it"
  fi
  cluster_run "$name evaluate" 60 "$cluster_bin/vavl" evaluate --checkpoint "$run/checkpoint-last.h5" --corpus "$cluster_corpus" --split dev \
    || cluster_fail "$name" "vavl evaluate cannot load the previous checkpoint-last.h5 (exit $cluster_status)" "$cluster_log"
  echo "ok  $name ($(cluster_elapsed)s): rank 0 died writing $(basename "$partial") ($(stat -c %s "$partial") bytes left); the job exited $crashed; vavl evaluate loads the previous checkpoint-last.h5"
  cluster_resume "$name" "$run"
  # The resumed run, holding the folder's lock, removed the dead run's temporary file.
  [ -z "$(find "$run" -name '*.partial-*')" ] || cluster_fail "$name" "the resumed run left the dead one's temporary file: $(find "$run" -name '*.partial-*')"
}

# An unwritable output folder, a read-only file system and a full disk are each a clear
# error before training starts (no iteration runs).
cluster_test_output_folder() {
  local name="unwritable output folder"
  cluster_timer
  cluster_expect_early_error "$name" "cannot create the output folder /proc/forbidden" /proc/forbidden/run
  cluster_expect_early_error "a flag out of range" "invalid configuration: --dim (key 'dim'): -16" "$cluster_work/bad-flag" --dim=-16
  local mount="$cluster_work/mount"
  mkdir -p "$mount"
  if ! mount -t tmpfs -o size=2m,ro tmpfs "$mount" 2>"$cluster_work/mount.err"; then
    cluster_skip "read-only and full disk output folders" "cannot mount a tmpfs here ($(cat "$cluster_work/mount.err")); checked by hand only"
    return 0
  fi
  cluster_mount=$mount
  cluster_expect_early_error "read-only output folder" "is not writable (or the disk is full)" "$mount"
  mount -o remount,rw "$mount"
  dd if=/dev/zero of="$mount/filler" bs=64k >/dev/null 2>&1 || true  # until the 2 MB are gone
  cluster_expect_early_error "full disk" "is not writable (or the disk is full)" "$mount/run"
  umount "$mount"

  # The disk fills up after the first checkpoint: the next write fails, the job comes down
  # with a message naming the file, and the previous checkpoint still loads. The failing
  # write is the next checkpoint or rank 0's next line of metrics.jsonl, whichever needs a
  # new block first.
  name="disk fills during training"
  cluster_timer
  mount -t tmpfs -o size=8m tmpfs "$mount"
  cluster_start "$name" "${mpirun_cmd[@]}" -np 2 "$cluster_bin/vavl" "${cluster_train[@]}" --out "$mount/run"
  local job=$cluster_job
  cluster_wait_until 90 "$job" test -f "$mount/run/checkpoint-last.h5" || cluster_fail "$name" "no checkpoint after epoch 0" "$cluster_log"
  cluster_freeze "$job"
  dd if=/dev/zero of="$mount/filler" bs=64k >/dev/null 2>&1 || true
  cluster_thaw "$job"
  cluster_wait_job "$job" 60
  [ "$cluster_status" -ne 0 ] && [ "$cluster_status" -ne 124 ] || cluster_fail "$name" "exit $cluster_status (0 = finished on a full disk?, 124 = hang)" "$cluster_log"
  local failed=$cluster_status cause
  cause=$(grep -m1 -E "writing checkpoint|cannot write|Fatal error" "$cluster_log" | cut -c1-130) || cluster_fail "$name" "no message naming the failed write" "$cluster_log"
  rm -f "$mount/filler"
  cluster_run "$name evaluate" 60 "$cluster_bin/vavl" evaluate --checkpoint "$mount/run/checkpoint-last.h5" --corpus "$cluster_corpus" --split dev \
    || cluster_fail "$name" "the previous checkpoint-last.h5 does not load (exit $cluster_status)" "$cluster_log"
  echo "ok  $name ($(cluster_elapsed)s): exit $failed, $cause…; the previous checkpoint-last.h5 loads"
  umount "$mount"; cluster_mount=""

  # A corpus written onto a disk that fills up (synth, then import of .npy files): exit 1
  # with the message naming the file — not a crash in HDF5's clean-up at exit (SIGSEGV,
  # before the fix) — and nothing left behind.
  name="corpus onto a full disk"
  cluster_timer
  mount -t tmpfs -o size=600k tmpfs "$mount"
  cluster_mount=$mount
  local kind
  for kind in synth import; do
    if [ "$kind" = synth ]; then
      cluster_run "$name ($kind)" 60 "$cluster_bin/vavl" corpus synth --preset crema-d --output "$mount/corpus.h5" \
        --dims 64,48 --utterances 400 || true
    else
      cluster_import_tree "$cluster_work/npy-tree"
      cluster_run "$name ($kind)" 60 "$cluster_bin/vavl" corpus import --labels "$cluster_work/npy-tree/labels.csv" \
        --audio "$cluster_work/npy-tree/audio" --video "$cluster_work/npy-tree/video" --task categorical --output "$mount/corpus.h5" || true
    fi
    [ "$cluster_status" -eq 1 ] || cluster_fail "$name ($kind)" "exit $cluster_status, expected 1 (139 = the crash at exit)" "$cluster_log"
    grep -q "corpus.h5" "$cluster_log" || cluster_fail "$name ($kind)" "the message does not name the file" "$cluster_log"
    [ -z "$(ls -A "$mount")" ] || cluster_fail "$name ($kind)" "files left behind: $(ls -A "$mount")"
  done
  echo "ok  $name ($(cluster_elapsed)s): synth and import exit 1 naming the file, nothing left: $(grep -m1 "corpus.h5" "$cluster_log" | cut -c1-120)"
  umount "$mount"; cluster_mount=""
}

# cluster_import_tree DIR: a label CSV and .npy features (64-d audio, 48-d video, 100 and 60
# frames) for 300 utterances in DIR, written once by Python's standard library (no NumPy).
cluster_import_tree() {
  local dir=$1
  [ -f "$dir/labels.csv" ] && return 0
  python3 - "$dir" <<'PY'
import os, random, struct, sys
root = sys.argv[1]
random.seed(1)
for modality in ("audio", "video"):
    os.makedirs(os.path.join(root, modality), exist_ok=True)
def write_npy(path, rows, columns):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, columns)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%df" % (rows * columns), *(random.gauss(0, 1) for _ in range(rows * columns))))
lines = ["FileName,angry,sad,SpkrID,Gender,Split_Set"]
for i in range(300):
    name = "u%03d" % i
    write_npy(os.path.join(root, "audio", name + ".npy"), 100, 64)
    write_npy(os.path.join(root, "video", name + ".npy"), 60, 48)
    lines.append("%s.wav,%d,%d,%d,Male,%s" % (name, i % 2, 1 - i % 2, i % 10, ("Train", "Development", "Test")[i % 3]))
open(os.path.join(root, "labels.csv"), "w").write("\n".join(lines) + "\n")
PY
}

# cluster_expect_early_error NAME MESSAGE OUT: two-rank training into OUT fails within 30 s with
# MESSAGE and without running an iteration.
cluster_expect_early_error() {
  local name=$1 message=$2 out=$3 start
  shift 3  # the rest: extra training flags
  start=$(date +%s.%N)
  cluster_run "$name" 30 "${mpirun_cmd[@]}" -np 2 "$cluster_bin/vavl" "${cluster_train[@]}" --out "$out" "$@" || true
  [ "$cluster_status" -ne 0 ] && [ "$cluster_status" -ne 124 ] || cluster_fail "$name" "exit $cluster_status (0 = trained anyway, 124 = hang)" "$cluster_log"
  grep -q -- "$message" "$cluster_log" || cluster_fail "$name" "the message '$message' is missing" "$cluster_log"
  # A user's error: every rank stops, the message once, no MPI_Abort banner.
  [ "$(grep -c -- "$message" "$cluster_log")" -eq 1 ] || cluster_fail "$name" "the message is printed more than once" "$cluster_log"
  ! grep -q "MPI_ABORT" "$cluster_log" || cluster_fail "$name" "MPI_Abort's banner for a user's error" "$cluster_log"
  ! grep -q "^epoch " "$cluster_log" || cluster_fail "$name" "training started before the error" "$cluster_log"
  echo "ok  $name ($(cluster_since "$start")s, exit $cluster_status, before any iteration): $(grep -m1 -- "$message" "$cluster_log" | cut -c1-140)"
}

# MARK: - alone

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$cluster_repository"
  cluster_prepare "$(swift build --show-bin-path)"
  tests=("$@")
  [ ${#tests[@]} -gt 0 ] || tests=(simulated_hosts stall killed_rank stop_signal checkpoint_crash output_folder)
  for test in "${tests[@]}"; do "cluster_test_$test"; done
  if [ ${#cluster_skipped[@]} -gt 0 ]; then echo "cluster tests: passed, SKIPPED: ${cluster_skipped[*]}"; else echo "cluster tests: all passed"; fi
fi
