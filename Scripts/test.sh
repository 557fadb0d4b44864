#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every unit test and then the
# multi-rank tests under mpirun. Any failure exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/mpi.sh

Scripts/setup.sh

echo "== collectives have one owner: no MPI collective is called outside Sources/Distributed and Sources/System"
if grep -rnE "\.(allreduceSum|allreduceMax|allreduceMin|broadcast|barrier|startAllreduceSum)\(" \
     Sources/Core Sources/Data Sources/Training Sources/Experiments Sources/vavl; then
  echo "FAIL: the calls above belong behind the Distributed module's API (Sources/Distributed/JobCollectives.swift)"; exit 1
fi

echo "== build"
swift build --build-tests

echo "== unit tests"
swift test --skip-build --parallel --num-workers 2

bin=$(swift build --show-bin-path)

echo "== two-rank tests"
timeout 300 "${mpirun_cmd[@]}" -np 2 "$bin/vavl-mpi-tests"

# expect_job_failure NAME PATTERN COMMAND...: the job must exit non-zero within 30 s
# (124 = timeout, i.e. a hang) and its output must contain PATTERN.
expect_job_failure() {
  local name=$1 pattern=$2; shift 2
  local log; log=$(mktemp)
  local start; start=$(date +%s)
  set +e
  timeout 30 "$@" >"$log" 2>&1
  local status=$?
  set -e
  local elapsed=$(( $(date +%s) - start ))
  if [ $status -eq 0 ] || [ $status -eq 124 ]; then
    echo "FAIL: $name: exit $status after ${elapsed}s (0 = not detected, 124 = hang)"; cat "$log"; exit 1
  fi
  if ! grep -q -- "$pattern" "$log"; then
    echo "FAIL: $name: the message '$pattern' is missing"; cat "$log"; exit 1
  fi
  echo "ok  $name: the job came down (exit $status) in ${elapsed}s: $(grep -m1 -- "$pattern" "$log" | cut -c1-160)"
  rm -f "$log"
}

echo "== harness self-test: a failing rank must bring the job down within 30 s"
expect_job_failure "failing rank" "deliberate failure" "${mpirun_cmd[@]}" -np 2 "$bin/vavl-mpi-tests" --fail-rank 1

echo "== equivalence: R ranks and one process give the same parameters (dropout on, sync BatchNorm)"
timeout 600 "${mpirun_cmd[@]}" -np 2 "$bin/vavl-mpi-tests" equivalence
timeout 600 "${mpirun_cmd[@]}" -np 4 "$bin/vavl-mpi-tests" equivalence
echo "== equivalence in bf16: R ranks and one process, within bf16's own rounding noise (docs/DESIGN.md §9.3)"
timeout 600 "${mpirun_cmd[@]}" -np 2 "$bin/vavl-mpi-tests" equivalence --bf16
timeout 600 "${mpirun_cmd[@]}" -np 4 "$bin/vavl-mpi-tests" equivalence --bf16
echo "-- with --batchnorm local (DDP), reported, not asserted:"
timeout 600 "${mpirun_cmd[@]}" -np 2 "$bin/vavl-mpi-tests" equivalence --batchnorm-local

echo "== fault: a corrupt utterance read by rank 1 only brings the job down, naming it"
expect_job_failure "corrupt utterance" "audio feature nan" "${mpirun_cmd[@]}" -np 2 "$bin/vavl-mpi-tests" corrupt

# Clusters and faults (Cluster/README.md; the tests are in Cluster/fault-tests.sh)
echo "== clusters: simulated hosts, stall watchdog, killed rank, crash while checkpointing, resume, output folder"
source Cluster/fault-tests.sh
cluster_prepare "$bin"          # a small corpus and the uninterrupted one-host two-rank reference run
cluster_test_simulated_hosts    # two hosts as network namespaces, TCP only: the reference's parameters (SKIPPED without namespaces)
cluster_test_stall              # a rank sleeping in a step; a rank frozen by SIGSTOP: the watchdog ends the job (exit 75)
cluster_test_killed_rank        # kill -9 of rank 1 mid-epoch: down within 30 s; --resume: the reference's parameters
cluster_test_stop_signal        # SIGUSR1 mid-epoch (and a stop asked of one rank): exit 85 at one iteration; --resume: the reference's
cluster_test_checkpoint_crash   # rank 0 dies half-way through a checkpoint: the previous loads; --resume: the reference's
cluster_test_output_folder      # /proc/forbidden, a read-only and a full file system: a clear error before training
cluster_cleanup
[ ${#cluster_skipped[@]} -eq 0 ] || echo "== clusters: SKIPPED, not passed: ${cluster_skipped[*]}"

# Slurm (Cluster/README.md "Try the batch script on a workstation"; the tests are in Cluster/slurm-tests.sh)
echo "== Slurm: the batch script under a real single-node Slurm: both launchers, requeue on USR1 and on a stall, a failing rank, no binding, no PMIx"
source Cluster/slurm-tests.sh
slurm_start "$bin"              # munged, slurmctld, slurmd from a slurm.conf in a temporary folder; a corpus; the mpirun -np 2 reference (SKIPPED without root or the packages)
slurm_test_launchers            # the unmodified script with LAUNCHER=mpirun and =srun: the reference's parameters exactly
slurm_test_requeue              # scancel --batch --signal=USR1 mid-epoch (each launcher): exit 85, the job requeues itself, resumes, ends with the reference's parameters
slurm_test_stall                # rank 1 frozen: watchdog exit 75, the script requeues, the next start ends with the reference's parameters
slurm_test_failing_rank         # kill -9 of rank 1 mid-epoch (each launcher): job FAILED, ExitCode=137:0, the launcher's and the script's messages in the job log
slurm_test_fallbacks            # TaskPlugin=task/none: srun without --cpu-bind, with a note; no PMIx: mpirun, with a note; both the reference's parameters
slurm_stop
[ ${#slurm_skipped[@]} -eq 0 ] || echo "== Slurm: SKIPPED, not passed: $(printf '%s; ' "${slurm_skipped[@]}")"

echo "== experiments: the robustness sweep has the paper's shape; experiments agree on 1 and 2 ranks (release build)"
Scripts/experiments-check.sh

# Hostile and careless input against the release binary, as users run it (its numeric core
# is built without bounds checks): the command-line tests again, with that binary.
echo "== command-line tests against the release binary"
VAVL_TEST_BINARY="$(swift build -c release --show-bin-path)/vavl" swift test --skip-build --filter "TrainingTests.CommandLineTests"

echo "== all tests passed"
