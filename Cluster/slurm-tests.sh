#!/usr/bin/env bash
# The Slurm tests: `slurm-train.sbatch`, unmodified, under a real single-node Slurm (Cluster/README.md,
# "Try the batch script on a workstation"). Scripts/test.sh sources this file after fault-tests.sh
# and calls each test in its "Slurm" section; it also runs alone:
#
#   Cluster/slurm-tests.sh [TEST…]      (default: all; tests are the slurm_test_* names below
#                                        without the prefix, e.g. `Cluster/slurm-tests.sh requeue`)
#
# slurm_start BIN starts munged, slurmctld and slurmd from files written to a temporary folder
# (SLURM_CONF points the daemons and the clients at its slurm.conf; nothing under /etc is read or
# changed), makes a small corpus and the reference run (`mpirun -np 2` directly). Every daemon
# it started, and every process of the test cluster's jobs, is ended by its pid in slurm_stop,
# which also runs on exit (a failing test exits 1). Without root or the packages (slurm-wlm,
# munge: Scripts/setup.sh), or where the daemons do not come up, each test prints
# "SKIPPED: NAME: why" (never counted as passed) and returns 0.
#
# Each test prints "ok  NAME (Ns): what was seen", or "FAIL: NAME: …" with the job's log, and
# then exits 1. BIN holds `vavl` and `vavl-mpi-tests` (its compare-checkpoints is the test of
# equal parameters); the debug build in `swift build --show-bin-path` when run alone.

slurm_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
slurm_repository=$(dirname "$slurm_here")
slurm_skipped=()
slurm_daemons=()          # pids of munged, slurmctld and slurmd, started here
slurm_down=""             # why the test cluster is not running ("" when it runs)
slurm_work=""

# The training every job runs: two epochs of 11 global batches of 8 (the fault tests' run),
# one compute thread per rank.
slurm_train_args="--model tiny --epochs 2 --batch-size 8 --seed 5 --plain --log-every 1"

# slurm_start BIN: the test cluster, a corpus and the reference run; SKIPPED (return 0) where the
# daemons cannot start.
slurm_start() {
  slurm_bin=$1
  # shellcheck source=../Scripts/mpi.sh
  source "$slurm_repository/Scripts/mpi.sh"
  slurm_down=""
  if [ "$(id -u)" -ne 0 ]; then
    slurm_down="needs root (the test cluster runs its daemons and jobs as root: SlurmUser=root)"
  else
    local command
    for command in munged slurmctld slurmd sbatch srun scontrol scancel sinfo; do
      command -v "$command" >/dev/null || { slurm_down="$command is missing (Scripts/setup.sh installs the packages slurm-wlm and munge)"; break; }
    done
  fi
  if [ -n "$slurm_down" ]; then echo "SKIPPED: Slurm test cluster: $slurm_down"; return 0; fi

  slurm_work=$(mktemp -d "${TMPDIR:-/tmp}/vavl-slurm.XXXXXX")
  chmod 755 "$slurm_work"   # munged wants its socket's folder searchable by everyone
  slurm_chain_exit_trap
  slurm_timer
  slurm_munge_start && slurm_daemons_start task/affinity || { echo "SKIPPED: Slurm test cluster: $slurm_down"; slurm_stop; return 0; }
  # CPU binding as the batch script asks it (srun --cpu-bind=cores); where task/affinity cannot
  # bind here (a container's cpuset, say), the cluster runs without binding, as a real one may.
  if ! slurm_quietly srun --nodes=1 --ntasks=2 --cpus-per-task=1 --cpu-bind=cores true; then
    echo "note: srun --cpu-bind=cores fails under task/affinity here: the test cluster runs with TaskPlugin=task/none"
    slurm_daemons_stop
    slurm_daemons_start task/none || { echo "SKIPPED: Slurm test cluster: $slurm_down"; slurm_stop; return 0; }
  fi
  echo "ok  Slurm test cluster ($(slurm_elapsed)s): munged, slurmctld, slurmd on $slurm_node (2 sockets × 1 core, $slurm_task_plugin, srun --mpi: $(srun --mpi=list 2>&1 | awk '/^\t/ { printf "%s ", $1 }'))"

  slurm_timer
  slurm_corpus="$slurm_work/corpus.h5"
  slurm_run "corpus" 60 "$slurm_bin/vavl" corpus synth --preset crema-d --output "$slurm_corpus" --dims 24,20 --utterances 120 --seed 3 \
    || slurm_fail "corpus" "vavl corpus synth failed" "$slurm_log"
  # shellcheck disable=SC2086
  slurm_run "reference run" 120 "${mpirun_cmd[@]}" -np 2 "$slurm_bin/vavl" train --corpus "$slurm_corpus" --threads 1 $slurm_train_args \
    --out "$slurm_work/reference" || slurm_fail "reference run" "the two-rank run with mpirun -np 2 failed (exit $slurm_status)" "$slurm_log"
  slurm_reference="$slurm_work/reference/checkpoint-last.h5"
  slurm_iterations_total=$(slurm_iterations "$slurm_work/reference")
  echo "ok  Slurm reference run ($(slurm_elapsed)s): mpirun -np 2 directly, $slurm_iterations_total iterations"
}

# slurm_stop: ends the test cluster's jobs, then the daemons, each by its pid; removes the folder.
slurm_stop() {
  local -; set +e   # also as an EXIT trap after a failure: end everything
  [ -n "$slurm_work" ] || return 0
  slurm_daemons_stop
  slurm_end_pids "${slurm_daemons[@]}"   # munged
  slurm_daemons=()
  rm -rf "$slurm_work"
  slurm_work=""
  return 0
}

# MARK: - the tests

# The batch script trains with each launcher and ends with the reference's parameters (bit for bit).
slurm_test_launchers() {
  local launcher
  for launcher in mpirun srun; do
    local name="batch script, LAUNCHER=$launcher" run="$slurm_work/launch-$launcher" job same
    slurm_ready "$name" || continue
    slurm_timer
    slurm_submit "$name" "$launcher" "$run"; job=$slurm_job
    slurm_wait_job "$name" "$job" 90
    slurm_expect_state "$name" "$job" COMPLETED 0:0
    grep -q "^slurm-train: 1 nodes ($slurm_node), 2 ranks × 1 threads" "$slurm_job_log" \
      || slurm_fail "$name" "the script's layout line is missing" "$slurm_job_log"
    grep -q "^finished: $slurm_iterations_total iterations" "$slurm_job_log" || slurm_fail "$name" "training did not finish" "$slurm_job_log"
    slurm_same "$name" "$slurm_reference" "$run/checkpoint-last.h5"; same=$slurm_same_result
    echo "ok  $name ($(slurm_elapsed)s): job $job COMPLETED$(slurm_binding_note); vs mpirun -np 2: $same"
  done
}

# slurm_submit_and_freeze NAME LAUNCHER RUN: submits the job, waits until it has run 3
# iterations and freezes its ranks there (SIGSTOP), so that what the test does next lands
# mid-epoch however fast the steps are; $slurm_job and $slurm_frozen_at (the iteration) say where.
slurm_submit_and_freeze() {
  local name=$1 launcher=$2 run=$3
  slurm_submit "$name" "$launcher" "$run"
  slurm_wait_until "$name" "$slurm_job" 60 slurm_at_least "$run" 3 || slurm_fail "$name" "job $slurm_job did not reach iteration 3" "$slurm_job_log"
  slurm_freeze "$slurm_job"
  slurm_frozen_at=$(slurm_iterations "$run")
  [ "$slurm_frozen_at" -lt $(( slurm_iterations_total - 2 )) ] \
    || slurm_fail "$name" "the steps outran the test: frozen at iteration $slurm_frozen_at" "$slurm_job_log"
}

# USR1 as Slurm sends it before a time limit (--signal=B:USR1@600; here scancel --batch
# --signal=USR1) mid-epoch: the script forwards it to the launcher, every rank stops after the same
# iteration (exit 85), the job requeues itself, resumes from checkpoint-last.h5 and ends with the
# reference's parameters. The ranks are frozen (SIGSTOP) while the signal travels, so that it
# arrives mid-epoch however fast the steps are.
slurm_test_requeue() {
  local launcher
  for launcher in srun mpirun; do
    local name="USR1 before the time limit, LAUNCHER=$launcher" run="$slurm_work/requeue-$launcher" job at stopped same
    slurm_ready "$name" || continue
    slurm_timer
    slurm_submit_and_freeze "$name" "$launcher" "$run"; job=$slurm_job; at=$slurm_frozen_at
    scancel --batch --signal=USR1 "$job" || slurm_fail "$name" "scancel --batch --signal=USR1 $job failed"
    slurm_wait_until "$name" "$job" 20 grep -q "^slurm-train: USR1" "$slurm_job_log" || slurm_fail "$name" "the batch script did not trap USR1" "$slurm_job_log"
    sleep 0.5   # the launcher forwards it to the (still frozen) ranks
    slurm_thaw "$job"
    slurm_wait_job "$name" "$job" 90
    slurm_expect_state "$name" "$job" COMPLETED 0:0
    stopped=$(grep -m1 -o 'stopped by a signal after iteration [0-9]*' "$slurm_job_log" | grep -o '[0-9]*$') \
      || slurm_fail "$name" "no rank stopped on the signal" "$slurm_job_log"
    grep -q "^slurm-train: stopped after an iteration, checkpoint-last.h5 written there: requeueing job $job" "$slurm_job_log" \
      || slurm_fail "$name" "the step did not exit 85, or the script did not requeue the job" "$slurm_job_log"
    [ "$(slurm_job_field "$job" Restarts)" = 1 ] || slurm_fail "$name" "Restarts=$(slurm_job_field "$job" Restarts), expected 1" "$slurm_job_log"
    grep -q "^slurm-train: restart 1 of job $job: resuming from" "$slurm_job_log" || slurm_fail "$name" "the requeued job did not resume" "$slurm_job_log"
    grep -q "^finished: $slurm_iterations_total iterations" "$slurm_job_log" || slurm_fail "$name" "the resumed training did not finish" "$slurm_job_log"
    slurm_same "$name" "$slurm_reference" "$run/checkpoint-last.h5"; same=$slurm_same_result
    echo "ok  $name ($(slurm_elapsed)s): frozen at iteration $at, USR1; every rank stopped after iteration $stopped, exit 85;" \
         "job $job requeued itself and resumed (Restarts=1); vs the uninterrupted run: $same"
  done
}

# A rank stalls (rank 1 frozen by SIGSTOP mid-epoch): rank 0's stall watchdog ends the step
# (exit 75, "stalled:" in the job's errors), the script requeues the job, and the next start
# trains to the reference's parameters.
slurm_test_stall() {
  local name="stalled rank, LAUNCHER=srun" run="$slurm_work/stalled" job rank1 at
  slurm_ready "$name" || return 0
  slurm_timer
  slurm_submit "$name" srun "$run" STALL_ARGS="--stall-factor 5 --stall-minimum-seconds 2"; job=$slurm_job
  slurm_wait_until "$name" "$job" 60 slurm_at_least "$run" 3 || slurm_fail "$name" "job $job did not reach iteration 3" "$slurm_job_log"
  rank1=$(slurm_rank_pid "$job" 1)
  [ -n "$rank1" ] || slurm_fail "$name" "cannot find rank 1 of job $job" "$slurm_job_log"
  kill -STOP "$rank1" || slurm_fail "$name" "cannot stop rank 1 (pid $rank1)" "$slurm_job_log"
  at=$(slurm_iterations "$run")
  [ "$at" -lt $(( slurm_iterations_total - 2 )) ] || slurm_fail "$name" "the steps outran the test: rank 1 frozen at iteration $at" "$slurm_job_log"
  slurm_wait_job "$name" "$job" 90
  slurm_expect_state "$name" "$job" COMPLETED 0:0
  grep -q "stalled:" "$slurm_job_log" || slurm_fail "$name" "no watchdog message" "$slurm_job_log"
  grep -q "^slurm-train: a rank stalled (exit [0-9]*; at most [0-9]* restarts): requeueing job $job" "$slurm_job_log" \
    || slurm_fail "$name" "the script did not requeue the job after the stall" "$slurm_job_log"
  [ "$(slurm_job_field "$job" Restarts)" = 1 ] || slurm_fail "$name" "Restarts=$(slurm_job_field "$job" Restarts), expected 1" "$slurm_job_log"
  grep -q "^finished: $slurm_iterations_total iterations" "$slurm_job_log" || slurm_fail "$name" "the second start did not finish" "$slurm_job_log"
  slurm_same "$name" "$slurm_reference" "$run/checkpoint-last.h5"
  echo "ok  $name ($(slurm_elapsed)s): rank 1 frozen at iteration $at: $(grep -m1 -o 'rank [0-9] of 2: stalled: step [^(]*' "$slurm_job_log");" \
       "$(grep -m1 -o 'a rank stalled (exit [0-9]*' "$slurm_job_log")), job $job requeued (Restarts=1); vs mpirun -np 2: $slurm_same_result"
}

# A rank dies mid-epoch (kill -9 of rank 1): the launcher brings the other down, the job ends
# FAILED with the step's status (128 + 9) and the job log says why; it is not requeued.
slurm_test_failing_rank() {
  local launcher
  for launcher in srun mpirun; do
    local name="rank 1 killed, LAUNCHER=$launcher" run="$slurm_work/killed-$launcher" job rank1 at
    slurm_ready "$name" || continue
    slurm_timer
    slurm_submit_and_freeze "$name" "$launcher" "$run"; job=$slurm_job; at=$slurm_frozen_at
    rank1=$(slurm_rank_pid "$job" 1)
    [ -n "$rank1" ] || slurm_fail "$name" "cannot find rank 1 of job $job" "$slurm_job_log"
    kill -KILL "$rank1" || slurm_fail "$name" "cannot kill rank 1 (pid $rank1)" "$slurm_job_log"
    slurm_thaw "$job"
    slurm_wait_job "$name" "$job" 60
    slurm_expect_state "$name" "$job" FAILED 137:0
    grep -q "^slurm-train: training failed with exit 137" "$slurm_job_log" || slurm_fail "$name" "the script's failure message is missing" "$slurm_job_log"
    grep -qiE "task 1: Killed|rank 1 .*signal 9|process rank 1 .* exited on signal 9" "$slurm_job_log" \
      || slurm_fail "$name" "the launcher did not name the killed rank" "$slurm_job_log"
    ! grep -q "requeueing job" "$slurm_job_log" || slurm_fail "$name" "a killed rank requeued the job" "$slurm_job_log"
    echo "ok  $name ($(slurm_elapsed)s): kill -9 at iteration $at: job $job FAILED, ExitCode=137:0:" \
         "$(grep -m1 -iE "task 1: Killed|rank 1 .*signal 9" "$slurm_job_log" | cut -c1-100)"
  done
}

# Clusters that cannot bind or lack PMIx: under TaskPlugin=task/none the script launches srun
# without --cpu-bind and says so; where `srun --mpi=list` shows no PMIx (here: an srun on PATH
# that hides it) it launches with mpirun and says so. Both end with the reference's parameters.
slurm_test_fallbacks() {
  local name="srun under TaskPlugin=task/none" run="$slurm_work/unbound" job note restore=${slurm_task_plugin:-}
  slurm_ready "$name" || { slurm_ready "srun without PMIx" || true; return 0; }
  slurm_timer
  if [ "$slurm_task_plugin" != task/none ]; then
    slurm_daemons_stop
    slurm_daemons_start task/none || slurm_fail "$name" "the test cluster does not restart: $slurm_down"
  fi
  slurm_submit "$name" srun "$run"; job=$slurm_job
  slurm_wait_job "$name" "$job" 90
  slurm_expect_state "$name" "$job" COMPLETED 0:0
  note=$(grep -m1 "^slurm-train: note: TaskPlugin=task/none cannot bind" "$slurm_job_log") || slurm_fail "$name" "no note on the missing binding" "$slurm_job_log"
  ! grep -q "lacks support for cpu binding" "$slurm_job_log" || slurm_fail "$name" "srun was still asked to bind" "$slurm_job_log"
  slurm_same "$name" "$slurm_reference" "$run/checkpoint-last.h5"
  echo "ok  $name ($(slurm_elapsed)s): job $job COMPLETED, ${note#slurm-train: }; vs mpirun -np 2: $slurm_same_result"
  if [ "$restore" != task/none ]; then
    slurm_daemons_stop
    slurm_daemons_start "$restore" || slurm_fail "$name" "the test cluster does not restart: $slurm_down"
  fi

  name="srun without PMIx"
  run="$slurm_work/no-pmix"
  slurm_timer
  mkdir -p "$slurm_work/no-pmix-bin"
  printf '#!/bin/sh\n# srun as on a cluster without Slurm'"'"'s PMIx plugin (Cluster/slurm-tests.sh)\nif [ "$1" = --mpi=list ]; then printf '"'"'MPI plugin types are...\\n\\tnone\\n\\tpmi2\\n'"'"'; exit 0; fi\nexec %s "$@"\n' \
    "$(command -v srun)" >"$slurm_work/no-pmix-bin/srun"
  chmod +x "$slurm_work/no-pmix-bin/srun"
  slurm_submit "$name" srun "$run" PATH="$slurm_work/no-pmix-bin:$PATH"; job=$slurm_job
  slurm_wait_job "$name" "$job" 90
  slurm_expect_state "$name" "$job" COMPLETED 0:0
  note=$(grep -m1 "^slurm-train: note: srun offers no PMIx" "$slurm_job_log") || slurm_fail "$name" "no note on the missing PMIx" "$slurm_job_log"
  grep -q "MCW rank 0 bound to" "$slurm_job_log" || slurm_fail "$name" "mpirun did not launch the ranks" "$slurm_job_log"
  slurm_same "$name" "$slurm_reference" "$run/checkpoint-last.h5"
  echo "ok  $name ($(slurm_elapsed)s): job $job COMPLETED, ${note#slurm-train: }; vs mpirun -np 2: $slurm_same_result"
}

# MARK: - the test cluster

# slurm_chain_exit_trap: slurm_stop on exit, before whatever EXIT trap was set (fault-tests.sh's).
slurm_chain_exit_trap() {
  local previous=""
  eval "set -- $(trap -p EXIT)"
  [ $# -ge 3 ] && previous=$3
  case $previous in *slurm_stop*) return ;; esac
  # shellcheck disable=SC2064
  trap "slurm_stop; $previous" EXIT
}

# slurm_munge_start: munged with its own key, socket, pid, seed and log files in $slurm_work.
slurm_munge_start() {
  local munge="$slurm_work/munge"
  mkdir -p "$munge" && chmod 755 "$munge"
  ( umask 077; head -c 1024 /dev/urandom >"$munge/munge.key" )
  slurm_munge_socket="$munge/munge.socket"
  munged --foreground --key-file="$munge/munge.key" --socket="$slurm_munge_socket" --pid-file="$munge/munged.pid" \
    --seed-file="$munge/munged.seed" --log-file="$munge/munged.log" </dev/null >"$munge/munged.out" 2>&1 &
  slurm_daemons+=($!)
  local deadline=$(( $(date +%s) + 10 ))
  until munge -S "$slurm_munge_socket" -n 2>/dev/null | unmunge -S "$slurm_munge_socket" >/dev/null 2>&1; do
    if ! kill -0 "${slurm_daemons[-1]}" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
      slurm_down="munged does not start: $(grep -m1 -iE 'error' "$munge/munged.out" || tail -1 "$munge/munged.out")"
      return 1
    fi
    sleep 0.1
  done
}

# slurm_daemons_start TASK_PLUGIN: slurm.conf in $slurm_work (the node: 2 sockets × 1 core, so that
# the script's --ntasks-per-socket=1 fits two ranks on two cores), then slurmctld and slurmd in the
# foreground of background jobs (their pids are ours); waits until the node is idle.
slurm_daemons_start() {
  slurm_task_plugin=$1
  slurm_node=$(hostname -s)
  local state="$slurm_work/slurm" port
  mkdir -p "$state/ctld" "$state/spool"
  port=$(slurm_free_port_pair)
  export SLURM_CONF="$state/slurm.conf"
  cat >"$SLURM_CONF" <<EOF
# The test cluster of Cluster/slurm-tests.sh: one node, two CPUs, everything in $state.
ClusterName=vavl-test
SlurmctldHost=$slurm_node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$(( port + 1 ))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it starts again (default 120 s)
AuthInfo=socket=$slurm_munge_socket,cred_expire=5
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=$slurm_task_plugin
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
JobRequeue=1
ReturnToService=2
MinJobAge=600
KillWait=5
MailProg=/bin/true
# start a requeued job as soon as its begin time has passed (default: within 60 s)
SchedulerParameters=sched_interval=1,bf_interval=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$slurm_node NodeAddr=127.0.0.1 CPUs=2 Sockets=2 CoresPerSocket=1 ThreadsPerCore=1 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  slurmctld -D -i -f "$SLURM_CONF" </dev/null >"$state/slurmctld.out" 2>&1 &
  slurm_ctld=$!
  slurmd -D -N "$slurm_node" -f "$SLURM_CONF" </dev/null >"$state/slurmd.out" 2>&1 &
  slurm_slurmd=$!
  local deadline=$(( $(date +%s) + 30 )) node_state=""
  while :; do
    node_state=$(sinfo -h -n "$slurm_node" -o %T 2>/dev/null) || true
    [ "$node_state" = idle ] && return 0
    if ! kill -0 "$slurm_ctld" 2>/dev/null || ! kill -0 "$slurm_slurmd" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
      slurm_down="the node is not idle after starting slurmctld and slurmd (state '${node_state:-none}'): $(cat "$state/slurmctld.out" "$state/slurmd.out" | grep -m2 -iE 'fatal|error' | tr '\n' ' ')"
      return 1
    fi
    sleep 0.2
  done
}

# slurm_daemons_stop: every process of the test cluster's jobs (slurmstepd, the batch script,
# launchers, ranks: all carry its SLURM_CONF), then slurmd and slurmctld.
slurm_daemons_stop() {
  local -; set +e
  [ -n "${slurm_ctld:-}" ] || return 0
  scancel --partition=test 2>/dev/null || true
  local pids
  pids=$(slurm_job_processes)
  [ -z "$pids" ] || slurm_end_pids $pids
  slurm_end_pids "$slurm_slurmd" "$slurm_ctld"
  pids=$(slurm_job_processes)   # a step daemon that started while slurmd went down
  [ -z "$pids" ] || slurm_end_pids $pids
  slurm_ctld=""; slurm_slurmd=""
}

# slurm_end_pids PID…: TERM, then KILL what is left after 5 s (continued first, in case a test stopped it).
slurm_end_pids() {
  local -; set +e
  local pid deadline=$(( $(date +%s) + 5 )) left
  for pid in "$@"; do kill -CONT "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null; done
  while :; do
    left=()
    for pid in "$@"; do slurm_alive "$pid" && left+=("$pid"); done
    [ ${#left[@]} -gt 0 ] || break
    if [ "$(date +%s)" -ge "$deadline" ]; then
      for pid in "${left[@]}"; do kill -KILL "$pid" 2>/dev/null; done
      break
    fi
    sleep 0.1
  done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

# slurm_job_processes: pids of the test cluster's step daemons (slurmstepd, started by our slurmd)
# and of its jobs' processes (the batch script, launchers, ranks): their environment names its
# slurm.conf, and jobs also its cluster name.
slurm_job_processes() {
  [ -n "${SLURM_CONF:-}" ] || return 0
  local environ pid name
  for environ in $(grep -lszxF -- "SLURM_CONF=$SLURM_CONF" /proc/[0-9]*/environ); do
    pid=${environ#/proc/}; pid=${pid%/environ}
    case " ${slurm_daemons[*]} $slurm_ctld $slurm_slurmd $$ $BASHPID " in *" $pid "*) continue ;; esac
    name=""; read -r name 2>/dev/null <"/proc/$pid/comm" || true
    if [ "$name" = slurmstepd ] || grep -qszxF "SLURM_CLUSTER_NAME=vavl-test" "$environ"; then echo "$pid"; fi
  done
  return 0
}

# slurm_free_port_pair: a port P with P and P+1 free on this host.
slurm_free_port_pair() {
  local port try
  for try in 1 2 3 4 5 6 7 8 9 10; do
    port=$(( 20000 + RANDOM % 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$(( port + 1 ))") 2>/dev/null; then
      echo "$port"; return
    fi
  done
  echo "$port"
}

# MARK: - jobs

# slurm_submit NAME LAUNCHER RUN [VAR=VALUE…]: submits the unmodified batch script, one node, two
# ranks of one CPU, 30 minutes (the command line overrides its multi-node defaults; a time limit of
# 10 minutes or less would bring --signal=B:USR1@600 at once), the settings in its
# environment (--export=ALL: as root, mpirun needs the allow-run-as-root variables). The job id
# in $slurm_job, its log in $slurm_job_log.
slurm_submit() {
  local name=$1 launcher=$2 run=$3 job; shift 3
  slurm_job_log="$run.log"
  job=$(env "$@" VAVL="$slurm_bin/vavl" CORPUS="$slurm_corpus" RUN_DIR="$run" LAUNCHER="$launcher" TRAIN_ARGS="$slurm_train_args" \
      OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none \
      sbatch --parsable --export=ALL --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --time=30 \
        --chdir="$slurm_work" --output="$slurm_job_log" "$slurm_here/slurm-train.sbatch" 2>"$run.sbatch.err") \
    || slurm_fail "$name" "sbatch failed" "$run.sbatch.err"
  slurm_job=${job%%;*}
}

# slurm_job_field JOB FIELD: FIELD of `scontrol show job` (e.g. JobState, ExitCode, Restarts).
slurm_job_field() {
  scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | grep -m1 "^$2=" | cut -d= -f2- || true
}

slurm_job_ended() {
  case $(slurm_job_field "$1" JobState) in
    COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED|"") return 0 ;;
    *) return 1 ;;
  esac
}

# slurm_wait_job NAME JOB SECONDS: until the job has ended (requeues included); fails after SECONDS.
slurm_wait_job() {
  local name=$1 job=$2 deadline=$(( $(date +%s) + $3 ))
  until slurm_job_ended "$job"; do
    [ "$(date +%s)" -lt "$deadline" ] || slurm_fail "$name" "job $job has not ended after $3 s ($(slurm_job_field "$job" JobState), $(slurm_job_field "$job" Reason))" "$slurm_job_log"
    sleep 0.2
  done
}

# slurm_expect_state NAME JOB STATE EXITCODE
slurm_expect_state() {
  local state exit_code
  state=$(slurm_job_field "$2" JobState); exit_code=$(slurm_job_field "$2" ExitCode)
  [ "$state" = "$3" ] && [ "$exit_code" = "$4" ] \
    || slurm_fail "$1" "job $2 ended $state with ExitCode=$exit_code, expected $3 with $4" "$slurm_job_log"
}

# slurm_wait_until NAME JOB SECONDS COMMAND…: polls COMMAND every 20 ms until it succeeds; fails if
# the job ends first (asked of slurmctld every 25th poll, so that the polls stay quick).
slurm_wait_until() {
  local name=$1 job=$2 deadline=$(( $(date +%s) + $3 )) polls=0; shift 3
  until "$@"; do
    polls=$(( polls + 1 ))
    if [ $(( polls % 25 )) -eq 0 ]; then
      ! slurm_job_ended "$job" || "$@" || return 1
      [ "$(date +%s)" -lt "$deadline" ] || return 1
    fi
    sleep 0.02
  done
}

# slurm_ranks JOB: pids of the job's vavl processes (under srun or mpirun, they carry SLURM_JOB_ID;
# their comm is not always "vavl": matched by executable).
slurm_ranks() {
  local environ pid binary
  binary=$(readlink -f "$slurm_bin/vavl")
  for environ in $(grep -lszxF -- "SLURM_JOB_ID=$1" /proc/[0-9]*/environ); do
    pid=${environ#/proc/}; pid=${pid%/environ}
    case $(readlink "/proc/$pid/exe" 2>/dev/null) in "$binary"*) ;; *) continue ;; esac
    grep -qszxF -- "SLURM_CONF=$SLURM_CONF" "$environ" && echo "$pid"
  done
  return 0
}

# slurm_rank_pid JOB RANK: the pid of RANK (OMPI_COMM_WORLD_RANK under mpirun; SLURM_PROCID under
# srun, where the ranks' initial environment has no OMPI_COMM_WORLD_RANK).
slurm_rank_pid() {
  local pid environment
  for pid in $(slurm_ranks "$1"); do
    environment=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ") || continue
    if grep -q "^OMPI_COMM_WORLD_RANK=" <<<"$environment"; then
      grep -qx "OMPI_COMM_WORLD_RANK=$2" <<<"$environment" && { echo "$pid"; return; }
    elif grep -qx "SLURM_PROCID=$2" <<<"$environment"; then
      echo "$pid"; return
    fi
  done
}

slurm_freeze() { local pid; for pid in $(slurm_ranks "$1"); do kill -STOP "$pid" 2>/dev/null || true; done; }
slurm_thaw() { local pid; for pid in $(slurm_ranks "$1"); do kill -CONT "$pid" 2>/dev/null || true; done; }

# slurm_iterations RUN: global iterations rank 0 has recorded in RUN/metrics.jsonl.
slurm_iterations() {
  local count
  count=$(grep -c '"type":"iteration"' "$1/metrics.jsonl" 2>/dev/null) || true
  echo "${count:-0}"
}
slurm_at_least() { [ "$(slurm_iterations "$1")" -ge "$2" ]; }

# slurm_same NAME A B: the two checkpoints hold the same parameters, buffers and Adam state
# (the fault tests' comparison: vavl-mpi-tests compare-checkpoints --tolerance 0); the parameters'
# line of the comparison in $slurm_same_result.
slurm_same() {
  local name=$1 comparison="$slurm_work/compare.log"
  "$slurm_bin/vavl-mpi-tests" compare-checkpoints "$2" "$3" --tolerance 0 >"$comparison" 2>&1 \
    || slurm_fail "$name" "the checkpoints differ: $2 vs $3" "$comparison"
  slurm_same_result=$(grep "^parameter" "$comparison" | sed 's/^parameter *//')
}

# slurm_binding_note: how the job's ranks were bound, from the job log.
slurm_binding_note() {
  if grep -q "MCW rank 0 bound to" "$slurm_job_log"; then echo "; mpirun bound each rank to a core"
  elif grep -q "^slurm-train: launching with srun .*--cpu-bind=cores" "$slurm_job_log"; then echo "; srun --cpu-bind=cores ($slurm_task_plugin)"
  fi
  return 0
}

# MARK: - helpers

slurm_ready() {
  [ -n "$slurm_work" ] && [ -z "$slurm_down" ] && return 0
  echo "SKIPPED: $1: no test cluster: ${slurm_down:-slurm_start was not called}"
  slurm_skipped+=("$1")
  return 1
}

slurm_timer() { slurm_started=$(date +%s.%N); }
slurm_elapsed() { awk -v start="$slurm_started" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - start }'; }

slurm_fail() {
  echo "FAIL: $1: $2"
  [ -n "${3:-}" ] && [ -f "$3" ] && sed 's/^/    /' "$3" | grep -v '^    ep \|^      dev ' | tail -40
  exit 1
}

# slurm_run NAME SECONDS COMMAND…: runs to completion (output in $slurm_log); status in $slurm_status.
slurm_run() {
  local name=$1 seconds=$2; shift 2
  slurm_log="$slurm_work/$(echo "$name" | tr ' /' '__').log"
  slurm_status=0
  timeout "$seconds" "$@" >"$slurm_log" 2>&1 || slurm_status=$?
  return $slurm_status
}

slurm_quietly() { timeout 30 "$@" >/dev/null 2>&1; }

slurm_alive() {
  local state
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# MARK: - alone

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$slurm_repository"
  slurm_start "${SLURM_TESTS_BIN:-$(swift build --show-bin-path)}"
  tests=("$@")
  [ ${#tests[@]} -gt 0 ] || tests=(launchers requeue stall failing_rank fallbacks)
  for test in "${tests[@]}"; do "slurm_test_$test"; done
  slurm_stop
  if [ ${#slurm_skipped[@]} -gt 0 ]; then echo "Slurm tests: SKIPPED: ${slurm_skipped[*]}"; else echo "Slurm tests: all passed"; fi
fi
