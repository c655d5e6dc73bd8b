#!/bin/sh
# RUSTC_WORKSPACE_WRAPPER for scripts/fuzz.sh: compiles the workspace's own crates with the
# SanitizerCoverage instrumentation libFuzzer needs (the flags `cargo fuzz build --sanitizer
# none` passes). Dependencies are compiled as usual, so the fuzz build reuses what the tests
# built; cargo hashes the wrapper into the artifacts' names, so nothing is overwritten.
exec "$@" \
  -Cpasses=sancov-module \
  -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
  -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares \
  --cfg fuzzing
