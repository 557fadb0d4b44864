# Sourced by the scripts: `mpirun_cmd` holds the launcher with the flags this machine needs.
# Root (CI containers) needs --allow-run-as-root; --oversubscribe lets ranks exceed cores.
mpirun_cmd=(mpirun --oversubscribe --bind-to none)
if [ "$(id -u)" -eq 0 ]; then
  mpirun_cmd+=(--allow-run-as-root)
fi
# Shared-memory single-copy needs ptrace rights that containers often lack; plain copies work everywhere.
mpirun_cmd+=(--mca btl_vader_single_copy_mechanism none)
