#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of network bytes (fuzz/fuzz_targets/*.rs) with
# libFuzzer. The targets are cargo-fuzz's layout (`cargo fuzz run <target>` works too); this
# script builds them with the instrumentation `cargo fuzz build --sanitizer none` uses, on the
# stable toolchain, in the dev profile (overflow checks and debug assertions on), sharing the
# workspace's target directory.
#
#   scripts/fuzz.sh                    every target for 15 s (the smoke CI runs)
#   scripts/fuzz.sh 600                every target for 10 minutes
#   scripts/fuzz.sh 3600 wav usp       some targets for an hour each
#
# Inputs that grow coverage collect in fuzz/corpus/<target>/ (kept between runs, not committed);
# the committed seeds are fuzz/seeds/<target>/. A crash stops the run with a non-zero status and
# leaves the input in fuzz/artifacts/<target>/: fix it, and keep it as a regression test beside
# the parser.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-15}
[ $# -gt 0 ] && shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^switchboard-fuzz$')
fi
root=$(cd .. && pwd)
export RUSTC_WORKSPACE_WRAPPER="$root/scripts/fuzz-rustc.sh"
bin_dir="${CARGO_TARGET_DIR:-$root/target}/debug"
echo "fuzz: building ${#targets[@]} targets (instrumented; dependencies shared with the tests' build)"
cargo build --locked -p switchboard-fuzz $(printf -- '--bin %s ' "${targets[@]}")
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
  echo "fuzz: $t for ${secs} s"
  log="artifacts/$t/last-run.log"
  status=0
  "$bin_dir/$t" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="artifacts/$t/" "corpus/$t" "seeds/$t" >"$log" 2>&1 \
    || status=$?
  grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "FATAL: fuzz target $t failed (status $status); the input is in fuzz/artifacts/$t/, the log in $log" >&2
    exit 1
  fi
done
echo "fuzz: ${#targets[@]} targets ran ${secs} s each without a crash"
