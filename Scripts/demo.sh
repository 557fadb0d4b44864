#!/usr/bin/env bash
# The main job on a built-in default: set up, build (release), make a small synthetic
# CREMA-D-shaped corpus, train with two MPI ranks, evaluate, print the result table.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/mpi.sh
Scripts/setup.sh
swift build -c release --product vavl
bin=$(swift build -c release --show-bin-path)
"${mpirun_cmd[@]}" -np 2 "$bin/vavl" info
