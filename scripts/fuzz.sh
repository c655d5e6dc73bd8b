#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of network bytes (fuzz/fuzz_targets/*.rs) with
# libFuzzer. The targets are cargo-fuzz's layout (`cargo fuzz run <target>` works too); this
# script builds them the way `cargo fuzz build --sanitizer none` does, on the stable toolchain.
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
host=$(rustc -vV | sed -n 's/^host: //p')
flags=(
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  --cfg fuzzing
)
export RUSTFLAGS="${flags[*]}"
export CARGO_TARGET_DIR="${SWITCHBOARD_FUZZ_TARGET_DIR:-$PWD/target}"
echo "fuzz: building ${#targets[@]} targets (instrumented, release, $host)"
# --target keeps build scripts and proc macros uninstrumented, as cargo fuzz does.
cargo build --release --locked --target "$host" $(printf -- '--bin %s ' "${targets[@]}")
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
  echo "fuzz: $t for ${secs} s"
  log="artifacts/$t/last-run.log"
  status=0
  "$CARGO_TARGET_DIR/$host/release/$t" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 \
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
