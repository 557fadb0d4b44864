#!/usr/bin/env bash
# OpenBLAS against BLIS behind the same wrapper: the same vavl binary, once as linked
# (OpenBLAS) and once with Debian's single-threaded BLIS put first with LD_PRELOAD, so that
# every cblas_sgemm call of the training step goes to BLIS. Prints the machine's sgemm rate
# (2048²) and the full paper-config step for each, with 1 and 2 compute threads (vavl
# splits products over threads itself, so the serial BLIS serves both).
#
#   Scripts/bench-blas.sh               # 2 timed iterations per row
#   ITERATIONS=3 Scripts/bench-blas.sh
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${ITERATIONS:-2}
log=$(mktemp -d)

Scripts/setup.sh
blis=/usr/lib/x86_64-linux-gnu/blis-serial/libblis.so.4
if [ ! -f "$blis" ]; then
  echo "== installing Debian's BLIS (libblis4-serial)"
  sudo_cmd=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo")
  $sudo_cmd apt-get install -y -qq libblis4-serial >/dev/null
fi
swift build -c release --product vavl >/dev/null
vavl="$(swift build -c release --show-bin-path)/vavl"

value() { grep -m1 "^$2=" "$1" | cut -d= -f2; }
echo "| BLAS | threads | sgemm 2048² GFLOP/s | step median s | step min s | step GFLOP/s |"
echo "|---|---|---|---|---|---|"
for threads in 1 2; do
  for library in OpenBLAS BLIS; do
    file="$log/$library-$threads"
    preload=$([ "$library" = BLIS ] && echo "$blis" || echo "")
    LD_PRELOAD="$preload" "$vavl" bench --model paper --batch-size 32 --threads "$threads" --iterations "$iterations" >"$file"
    grep -q "^BLAS: .*$( [ "$library" = BLIS ] && echo blis || echo openblas)" "$file" \
      || { echo "bench-blas: $library row did not run on $library:"; grep "^BLAS:" "$file"; exit 1; }
    sgemm=$(grep -m1 "^machine sgemm" "$file" | sed 's/.*: \([0-9.]*\) GFLOP.*/\1/')
    gflop=$(grep -m1 "^useful work" "$file" | sed 's/useful work: \([0-9.]*\) GFLOP.*/\1/')
    awk -v l="$library" -v t="$threads" -v s="$sgemm" -v m="$(value "$file" median_s)" -v mi="$(value "$file" min_s)" -v g="$gflop" \
      'BEGIN { printf "| %s | %s | %.1f | %.2f | %.2f | %.1f |\n", l, t, s, m, mi, g / m }'
  done
done
