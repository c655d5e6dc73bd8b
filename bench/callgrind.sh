#!/usr/bin/env bash
# Instructions the server executes per call-minute, counted by callgrind over a window of
# steady load: repeatable for one binary, where CPU seconds on a shared 2-core VM vary by 15 %
# from run to run. User-space instructions only (the kernel's socket work is not counted).
#
#   bench/callgrind.sh target/release/switchboard OUT_DIR [CALLS=4] [WINDOW_S=20]
#
# The bench starts the server under valgrind with instrumentation off, turns it on once the
# calls are up, dumps after WINDOW_S seconds, and writes OUT_DIR/summary.txt (instructions,
# per call-minute) beside the callgrind dump (`callgrind_annotate` reads it).
set -euo pipefail
bin=${1:?switchboard binary}
out=${2:?output directory}
calls=${3:-4}
window=${4:-20}
command -v callgrind_control >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/cg.* "$out"/bench.log
"$bin" bench --calls "$calls" --duration $((window + 30)) --ramp 2 \
  --calls-dir "$(dirname "$0")/../assets/calls" \
  --server-wrapper "valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out/cg.%p" \
  --json "$out/bench.json" 2>"$out/bench.log" &
bench=$!
pid=
for _ in $(seq 1 120); do
  pid=$(sed -n 's/.*server http[^ ]* (pid \([0-9]*\)).*/\1/p' "$out/bench.log" | head -1)
  [ -n "$pid" ] && break
  sleep 1
done
[ -n "$pid" ] || { echo "the server did not start under valgrind; see $out/bench.log" >&2; kill $bench; exit 1; }
echo "server pid $pid under callgrind; waiting for the calls to settle"
sleep 15
callgrind_control -i on "$pid" >/dev/null
echo "counting for ${window} s"
sleep "$window"
callgrind_control -d "$pid" >/dev/null
callgrind_control -i off "$pid" >/dev/null
wait $bench || true
dump=$(ls "$out"/cg."$pid".* 2>/dev/null | head -1)
[ -n "$dump" ] || { echo "no callgrind dump written" >&2; exit 1; }
ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p;s/^totals: *\([0-9]*\).*/\1/p' "$dump" | head -1)
per=$(awk -v ir="$ir" -v c="$calls" -v w="$window" 'BEGIN { printf "%.0f", ir / (c * w / 60) }')
{
  echo "calls $calls window_s $window instructions $ir per_call_minute $per"
  grep -E "calls held|late" "$out/bench.log" | tail -3 || true
} | tee "$out/summary.txt"
