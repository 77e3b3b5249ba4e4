#!/usr/bin/env bash
# Prefill and decode under CPU contention (issue 13's contention target): `dartlens-cli bench` on
# one model, vanilla only, 1 thread on an idle machine (the reference), then N threads idle and N
# threads with one core kept busy by another process (a shell busy loop), for each OpenMP spin
# setting given. Prints the medians and the ratio busy / 1-thread idle (target <= 1.5).
# Usage: tools/contention.sh [MODEL_DIR] [THREADS] [ROUNDS] [SPIN...]
#   defaults: a llava-geom-small preset in /tmp, 2 threads, 2 rounds (medians over rounds of
#   bench's own medians), SPIN = "libgomp dartlens passive": libgomp = libgomp's own spin count
#   (GOMP_SPINCOUNT=300000), dartlens = the executable's default (app/runtime_defaults.h),
#   a number N = GOMP_SPINCOUNT=N, passive = OMP_WAIT_POLICY=passive. Env: CLI (build/bin/dartlens-cli).
set -euo pipefail
cd "$(dirname "$0")/.."
CLI=${CLI:-build/bin/dartlens-cli}
MODEL=${1:-}
T=${2:-2}
ROUNDS=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
SPINS=("$@")
[ ${#SPINS[@]} -gt 0 ] || SPINS=(libgomp dartlens passive)
if [ -z "$MODEL" ]; then
  MODEL=/tmp/dartlens-contention-model
  [ -f "$MODEL/config.json" ] || "$CLI" make-model --preset llava-geom-small --out "$MODEL" >/dev/null
fi
bench() {  # bench THREADS SPIN -> "prefill_ms decode_ms_per_token"
  local env=(-u GOMP_SPINCOUNT -u OMP_WAIT_POLICY)
  case $2 in libgomp) env+=(GOMP_SPINCOUNT=300000) ;; dartlens) ;; passive) env+=(OMP_WAIT_POLICY=passive) ;;
    *) env+=(GOMP_SPINCOUNT="$2") ;; esac
  env "${env[@]}" "$CLI" bench -m "$MODEL" --method none -r 3 --warmup 1 -n 16 -t "$1" --no-gemm-peak \
    --no-prefix-cache -o json 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; print(r["prefill_ms"], r["decode_ms_per_token"])'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
declare -A P D
for ((round = 0; round < ROUNDS; round++)); do
  read -r p d < <(bench 1 libgomp); P[ref]+="$p "; D[ref]+="$d "  # 1 thread: nothing to spin for
  for s in "${SPINS[@]}"; do
    read -r p d < <(bench "$T" "$s"); P[idle_$s]+="$p "; D[idle_$s]+="$d "
    sh -c 'while :; do :; done' & busy=$!
    read -r p d < <(bench "$T" "$s"); P[busy_$s]+="$p "; D[busy_$s]+="$d "
    kill $busy; wait $busy 2>/dev/null || true
  done
done
m() { tr ' ' '\n' <<<"$1" | grep . | median; }
ref=$(m "${P[ref]}")
printf 'model %s, %s rounds; 1 thread (libgomp defaults), idle: prefill %.1f ms, decode %.2f ms/token\n' "$MODEL" "$ROUNDS" "$ref" "$(m "${D[ref]}")"
printf '| spin | %s threads idle: prefill ms | decode ms/tok | one core busy: prefill ms | decode ms/tok | busy prefill / 1-thread idle |\n|---|---|---|---|---|---|\n' "$T"
for s in "${SPINS[@]}"; do
  bp=$(m "${P[busy_$s]}")
  printf '| %s | %.1f | %.2f | %.1f | %.2f | %.2f |\n' "$s" "$(m "${P[idle_$s]}")" "$(m "${D[idle_$s]}")" "$bp" \
    "$(m "${D[busy_$s]}")" "$(python3 -c "print($bp / $ref)")"
done
