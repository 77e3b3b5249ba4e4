#!/usr/bin/env bash
# Sets DartLens up (packages, the PyPI venv, builds) and runs the whole test suite on both LibTorch
# configurations: Debian's 1.13 (CPU, ./build) and the PyTorch wheel's 2.x with CUDA (./build-pip).
# Exits non-zero when anything fails in either.
#   scripts/test.sh [--torch debian|pip|both]   (default both; CI runs both)
set -uo pipefail
cd "$(dirname "$0")/.."
WHICH=both
case "${1:-}" in
  --torch) WHICH=${2:-both} ;;
  --torch=*) WHICH=${1#--torch=} ;;
  "") ;;
  *) echo "test: unknown argument '$1' (usage: scripts/test.sh [--torch debian|pip|both])" >&2; exit 2 ;;
esac
case "$WHICH" in debian) CONFIGS=(debian) ;; pip) CONFIGS=(pip) ;; both) CONFIGS=(debian pip) ;;
  *) echo "test: --torch must be debian, pip or both" >&2; exit 2 ;; esac
status=0
summary=()
for cfg in "${CONFIGS[@]}"; do
  dir=build; [ "$cfg" = pip ] && dir=build-pip
  # The PyTorch build configures LibTorch's CUDA targets against a CUDA toolkit (this project's
  # machines have 13.0 in /usr/local/cuda). Elsewhere it is skipped, loudly; in CI it must be there.
  if [ "$cfg" = pip ] && [ ! -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ] && ! command -v nvcc >/dev/null; then
    if [ "${CI:-}" = true ]; then summary+=("pip: FAILED: no CUDA toolkit (nvcc) in ${CUDA_HOME:-/usr/local/cuda}"); status=1; continue; fi
    echo "test: SKIPPING the PyTorch build: no CUDA toolkit (nvcc) in ${CUDA_HOME:-/usr/local/cuda}; set CUDA_HOME" >&2
    summary+=("pip: skipped (no CUDA toolkit)"); continue
  fi
  echo "=== test: LibTorch '$cfg' -> $dir ===" >&2
  t0=$(date +%s)
  if ! BUILD_DIR=$dir scripts/setup.sh --torch "$cfg"; then
    summary+=("$cfg: setup/build FAILED"); status=1; continue
  fi
  t1=$(date +%s)
  (cd "$dir" && ctest --output-on-failure -j "$(nproc)" --timeout 1200)
  rc=$?
  t2=$(date +%s)
  [ $rc -eq 0 ] || status=1
  summary+=("$cfg: build $((t1 - t0)) s, tests $((t2 - t1)) s, ctest exit $rc")
done
echo "=== test summary ===" >&2
printf '  %s\n' "${summary[@]}" >&2
exit $status
