#!/usr/bin/env bash
# CI's fuzz smoke test: builds the cargo-fuzz targets in fuzz/ with libFuzzer's coverage
# instrumentation and runs each one briefly from its seed corpus (fuzz/seeds/<target>). A crash,
# timeout or memory blow-up fails the script and prints how to reproduce it. Why plain `cargo
# build` rather than `cargo fuzz`, and the measured times: fuzz/README.md.
#
#   FUZZ_SECONDS=25   how long each target runs (libFuzzer's -max_total_time); 0: build only
#   FUZZ_JOBS=2       build jobs, and targets run at the same time
#   FUZZ_TARGETS="reference policy_loader"   only these targets (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-25}"
jobs="${FUZZ_JOBS:-2}"
targets="${FUZZ_TARGETS:-reference docker_config registry_pattern manifest_loader policy_loader}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
# Its own target dir: the instrumented build never touches the normal build's cache.
target_dir="$PWD/target/fuzz"
bin_dir="$target_dir/$triple/release"

# libfuzzer-sys compiles libFuzzer (C++) in its build script.
if ! command -v c++ >/dev/null 2>&1; then
  echo "fuzz: a C++ compiler (c++) is needed to build libFuzzer; install g++" >&2
  exit 1
fi

# What `cargo fuzz build --sanitizer none` (cargo-fuzz 0.13) passes, without needing cargo-fuzz:
# SanitizerCoverage feeding libFuzzer, `cfg(fuzzing)`, debug assertions and overflow checks.
# `--target` keeps these flags off build scripts and proc macros, as cargo-fuzz does. No
# AddressSanitizer: the code under test is safe Rust (README). Stable rustc accepts all of these.
sancov="-Cpasses=sancov-module"
for arg in level=4 inline-8bit-counters pc-table trace-compares stack-depth; do
  sancov+=" -Cllvm-args=-sanitizer-coverage-$arg"
done
start=$SECONDS
echo "fuzz: building the targets (instrumented, in $target_dir)" >&2
(
  cd fuzz
  RUSTFLAGS="$sancov --cfg fuzzing -Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cdebug-assertions" \
    CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    cargo build --release --locked --bins --target "$triple" --target-dir "$target_dir" -j "$jobs"
)
echo "fuzz: built in $((SECONDS - start)) s" >&2
if [ "$seconds" = 0 ]; then
  exit 0
fi

# One target: its log in $target_dir/<target>.log, libFuzzer's exit status in <target>.status.
run_target() {
  local t=$1 status=0
  mkdir -p "$target_dir/corpus/$t" "$target_dir/artifacts/$t"
  rm -f "$target_dir/artifacts/$t"/*
  # New inputs go to the first directory (kept between local runs); the seeds are only read.
  RUST_BACKTRACE=1 "$bin_dir/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$target_dir/artifacts/$t/" "$target_dir/corpus/$t" "fuzz/seeds/$t" \
    >"$target_dir/$t.log" 2>&1 || status=$?
  echo "$status" >"$target_dir/$t.status"
}

# libFuzzer uses one core: $jobs targets at a time.
run_start=$SECONDS
echo "fuzz: running each target for $seconds s, $jobs at a time" >&2
for t in $targets; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_target "$t" &
done
wait

failed=()
for t in $targets; do
  log="$target_dir/$t.log"
  status="$(cat "$target_dir/$t.status")"
  if [ "$status" = 0 ]; then
    echo "fuzz: $t: ok, $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 |
      sed -E 's/^#([0-9]+)[[:space:]]+DONE[[:space:]]+/\1 runs, /')" >&2
    continue
  fi
  failed+=("$t")
  echo "fuzz: $t FAILED (exit status $status); the end of its log ($log):" >&2
  tail -n 60 "$log" >&2
  for input in "$target_dir/artifacts/$t"/*; do
    [ -e "$input" ] || continue
    echo "fuzz: $t: failing input $input ($(wc -c <"$input") bytes), base64:" >&2
    base64 -w 0 "$input" >&2
    echo >&2
  done
  cat >&2 <<EOF
fuzz: to reproduce, build with FUZZ_SECONDS=0 bash scripts/fuzz-smoke.sh, then run
  $bin_dir/$t INPUT
or: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t INPUT
(INPUT: the file above, or the base64 above decoded: base64 -d >crash <<<'...'). Fix the bug
and add the input as a regression test in the normal suite (fuzz/README.md).
EOF
done
echo "fuzz: ran in $((SECONDS - run_start)) s; build and runs took $((SECONDS - start)) s" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failing targets: ${failed[*]}" >&2
  exit 1
fi
