#!/usr/bin/env bash
# Runs the libFuzzer targets of a DARTLENS_FUZZ build (scripts/setup.sh --fuzz) for a fixed
# number of executions each, from the seed corpus in tests/data/fuzz/<target>/. That folder is only
# read: inputs the fuzzer finds go to BUILD/fuzz/<target>/corpus. A crash, sanitizer report, leak,
# out-of-memory or timeout fails the run and leaves the input as BUILD/fuzz/<target>/crash-* (or
# leak-*, oom-*, timeout-*): fix the parser, then keep the input as
# tests/data/fuzz/<target>/regress-<what> so that every later run (and ctest -L fuzz) replays it.
#   tests/fuzz/run.sh BUILD_DIR [TARGET...]   (build-fuzz; default: every fuzz_* in BUILD_DIR/bin)
# Env: FUZZ_RUNS (executions per target, default 100000), FUZZ_MAX_TIME (seconds per target, a
# guard against a slow machine, default 300), FUZZ_JOBS (targets at once, default nproc).
# Replay one input: BUILD/bin/fuzz_npy FILE
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:?usage: tests/fuzz/run.sh BUILD_DIR [TARGET...]}
shift
RUNS=${FUZZ_RUNS:-100000}
MAX_TIME=${FUZZ_MAX_TIME:-300}
JOBS=${FUZZ_JOBS:-$(nproc)}
# Leaks stay on: libFuzzer checks them per input. UBSan stops at the first report. A 16 MB
# quarantine (default 256) halves the page faults of the allocation-heavy targets (tokenizer).
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:quarantine_size_mb=16}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# fuzz_image: a few header bytes can declare a 200-megapixel picture (the app's limit), which
# OpenCV then allocates and fills; at 1 megapixel OpenCV refuses first and runs stay fast.
export OPENCV_IO_MAX_IMAGE_PIXELS=${OPENCV_IO_MAX_IMAGE_PIXELS:-1048576}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for exe in "$BUILD"/bin/fuzz_*; do [ -x "$exe" ] && targets+=("$(basename "$exe")"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no fuzz_* executables in $BUILD/bin (configure with DARTLENS_FUZZ=ON)" >&2; exit 2; }

# Longest input each target may try: big enough for its seeds, small enough to stay fast.
max_len() {
  case "$1" in
    fuzz_config|fuzz_tokenizer_model) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

# Targets whose input is (or holds) JSON get its syntax and edge-case numbers as a dictionary.
dict_args() {
  case "$1" in
    fuzz_safetensors*|fuzz_config|fuzz_preprocessor_config|fuzz_tokenizer) echo "-dict=tests/fuzz/json.dict" ;;
  esac
}

run_one() {
  local t=$1 out=$BUILD/fuzz/$1
  rm -rf "$out"
  mkdir -p "$out/corpus"
  local TIMEFORMAT='%R %U %S'  # wall, user and system seconds, into $out/time
  # shellcheck disable=SC2046  # dict_args prints zero or one word
  { time "$BUILD/bin/$t" $(dict_args "$t") -runs="$RUNS" -max_total_time="$MAX_TIME" -max_len="$(max_len "$t")" \
      -timeout=30 -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$out/" \
      "$out/corpus" "tests/data/fuzz/$t" >"$out/log" 2>&1
    echo $? >"$out/rc"; } 2>"$out/time"
}

t0=$(date +%s)
running=0
for t in "${targets[@]}"; do
  [ -x "$BUILD/bin/$t" ] || { echo "fuzz: $BUILD/bin/$t not built" >&2; exit 2; }
  [ -d "tests/data/fuzz/$t" ] || { echo "fuzz: no seed corpus tests/data/fuzz/$t" >&2; exit 2; }
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait

status=0
# runs/s per wall second, and per CPU second (what an idle machine would do, on a loaded one)
printf '%-24s %7s %6s %6s %7s %7s %5s  %s\n' target runs wall_s cpu_s runs/s per_cpu units result >&2
for t in "${targets[@]}"; do
  out=$BUILD/fuzz/$t
  rc=$(cat "$out/rc" 2>/dev/null || echo 1)
  final_stat() { sed -n "s/^stat::$1: *//p" "$out/log" | tail -1; }
  runs=$(final_stat number_of_executed_units)
  wall=0 user=0 sys=0
  read -r wall user sys <"$out/time" 2>/dev/null
  result=ok
  if [ "$rc" != 0 ]; then
    result="FAILED (exit $rc): $(ls "$out" | grep -E '^(crash|leak|oom|timeout|slow-unit)-' | head -1)"
    status=1
  elif [ "${runs:-0}" -lt "$RUNS" ]; then
    result="WARNING: stopped by the ${MAX_TIME} s guard before $RUNS runs"
  fi
  printf '%-24s %7s %s %5s  %s\n' "$t" "${runs:-?}" "$(awk -v n="${runs:-0}" -v w="$wall" -v u="$user" -v s="$sys" \
    'BEGIN { c = u + s; printf "%6.0f %6.0f %7.0f %7.0f", w, c, (w > 0 ? n / w : 0), (c > 0 ? n / c : 0) }')" \
    "$(final_stat new_units_added)" "$result" >&2
  if [ "$rc" != 0 ]; then
    echo "--- $t: last lines of $out/log" >&2
    tail -n 40 "$out/log" >&2
  fi
done
echo "fuzz: ${#targets[@]} targets in $(( $(date +%s) - t0 )) s" >&2
exit $status
