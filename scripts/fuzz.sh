#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang, ASan+UBSan) in ./build-fuzz
# (or $FUZZ_BUILD_DIR) and runs each for SECONDS (default 30), one after the
# other: scripts/fuzz.sh [SECONDS] [TARGET...] (targets: envelope request query
# config topic line_splitter; default all). Each run starts from the seed corpus
# tests/fuzz/corpus/<target>/ and from what earlier runs in the same build
# directory found (build-fuzz/fuzz-corpus/<target>/). Fails if any target
# crashes, leaks, times out on an input or runs out of memory; the input that
# did it is saved as build-fuzz/fuzz-artifacts/<target>-crash-... (reproduce
# with build-fuzz/tests/fuzz/fuzz_<target> FILE). Prints executions and
# coverage per target; the full logs are in build-fuzz/fuzz-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
all_targets=(envelope request query config topic line_splitter)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}

scripts/install-deps.sh --fuzz
CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDRUNC_FUZZ=ON \
  -DDRUNC_BUILD_TESTS=OFF >/dev/null
cmake --build "$build_dir" -j2 --target $(printf 'fuzz_%s ' "${targets[@]}")

mkdir -p "$build_dir/fuzz-logs" "$build_dir/fuzz-artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
summary=()
for target in "${targets[@]}"; do
  seeds=tests/fuzz/corpus/$target
  corpus=$build_dir/fuzz-corpus/$target
  log=$build_dir/fuzz-logs/$target.log
  [ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; exit 2; }
  mkdir -p "$corpus"
  options=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
           -artifact_prefix="$build_dir/fuzz-artifacts/$target-")
  [ -f "tests/fuzz/$target.dict" ] && options+=(-dict="tests/fuzz/$target.dict")
  echo "fuzz: $target for ${seconds}s"
  status=0
  "$build_dir/tests/fuzz/fuzz_$target" "${options[@]}" "$corpus" "$seeds" >"$log" 2>&1 || status=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  done_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$done_line")
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    echo "fuzz: $target FAILED (exit $status); the end of $log:" >&2
    grep -v '^INFO\|^#' "$log" | tail -40 >&2
    ls "$build_dir"/fuzz-artifacts/"$target"-* 2>/dev/null >&2 || true
  fi
  summary+=("$(printf '%-14s %12s %8s %8s %8s  %s' "$target" "${executions:-?}" "${cov:-?}" "${ft:-?}" \
               "${corp:-?}" "$([ "$status" -eq 0 ] && echo ok || echo FAILED)")")
done

printf '%-14s %12s %8s %8s %8s  %s\n' target executions cov ft corpus result
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} passed, 0 failed"
