#!/usr/bin/env bash
# Installs what DartLens needs and builds it.
# Usage: scripts/setup.sh [--no-gui] [--torch debian|pip] [--sanitize | --fuzz]
#   --torch debian (default): Debian's libtorch-dev 1.13 (CPU), built into ./build.
#   --torch pip: LibTorch 2.x with CUDA from the PyPI `torch` wheel, in the venv that
#                scripts/venv.sh creates outside the clone; built into ./build-pip. The CUDA code
#                compiles and links against /usr/local/cuda (or CUDA_HOME); running it needs a GPU.
#   --sanitize: core and its tests with ASan + UBSan (gcc), Debian's LibTorch, no GUI, no venv;
#               built into ./build-asan.
#   --fuzz: the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, Debian's LibTorch) and
#           nothing else; built into ./build-fuzz. Run them with tests/fuzz/run.sh build-fuzz.
# Either way the live Hugging Face tests (tests/hf) use that venv's python when it can be made
# (PyPI reachable); otherwise they are skipped and say so.
# Env: BUILD_DIR (default build / build-pip / build-asan / build-fuzz), JOBS (default nproc),
# DARTLENS_NO_VENV=1 (do not create the venv for the Debian build, only use it when present;
# otherwise the hf tests skip).
set -euo pipefail
cd "$(dirname "$0")/.."
GUI=ON
TORCH=debian
SANITIZE=0  # 1: --sanitize, 2: --fuzz
while [ $# -gt 0 ]; do
  case "$1" in
    --no-gui) GUI=OFF ;;
    --torch) TORCH=${2:-}; shift ;;
    --torch=*) TORCH=${1#--torch=} ;;
    --sanitize) SANITIZE=1 ;;
    --fuzz) SANITIZE=2 ;;
    *) echo "setup: unknown argument '$1' (usage: scripts/setup.sh [--no-gui] [--torch debian|pip] [--sanitize | --fuzz])" >&2; exit 2 ;;
  esac
  shift
done
case "$TORCH" in debian|pip) ;; *) echo "setup: --torch must be debian or pip, not '$TORCH'" >&2; exit 2 ;; esac
if [ "$SANITIZE" != 0 ] && [ "$TORCH" != debian ]; then echo "setup: --sanitize/--fuzz build with Debian's LibTorch only" >&2; exit 2; fi

PKGS=(cmake g++ make pkg-config libgtest-dev qt6-base-dev libqt6opengl6-dev qt6-charts-dev qt6-svg-dev
      libopenblas0-openmp libopencv-dev libsentencepiece-dev sentencepiece
      nlohmann-json3-dev libcli11-dev xvfb xauth python3 python3-venv slurm-wlm munge)
[ "$TORCH" = debian ] && PKGS+=(libtorch-dev)
# libFuzzer and the sanitizer runtimes come with clang; llvm has llvm-symbolizer (readable stacks).
[ "$SANITIZE" != 0 ] && PKGS+=(clang libclang-rt-14-dev llvm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; else
    echo "setup: missing Debian packages and no root/sudo. Run as root:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

VENV=""
if [ "$SANITIZE" != 0 ]; then
  :  # the live Hugging Face tests do not run in the sanitizer builds
elif [ "$TORCH" = pip ]; then
  VENV=$(scripts/venv.sh) || { echo "setup: --torch pip needs the venv (see above)" >&2; exit 1; }
elif [ "${DARTLENS_NO_VENV:-0}" != 1 ]; then
  VENV=$(scripts/venv.sh) || { echo "setup: no venv: the live Hugging Face tests will be skipped" >&2; VENV=""; }
else
  VENV=$(scripts/venv.sh --if-present) || VENV=""
fi
PYTHON=""
[ -n "$VENV" ] && PYTHON="$VENV/bin/python"

EXTRA=()
TARGET=()
if [ "$TORCH" = pip ]; then
  BUILD_DIR=${BUILD_DIR:-build-pip}
  TORCH_PREFIX=$("$PYTHON" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  CUDA_ROOT=${CUDA_HOME:-/usr/local/cuda}
  # CMAKE_LIBRARY_PATH: TorchConfig's find_library would otherwise prefer a system libtorch
  # (Debian's 1.13, when installed) over the wheel's.
  EXTRA+=(-DCMAKE_PREFIX_PATH="$TORCH_PREFIX" -DCMAKE_LIBRARY_PATH="$TORCH_PREFIX/../../lib"
          -DTORCH_CUDA_ARCH_LIST="8.0;9.0")
  if [ -x "$CUDA_ROOT/bin/nvcc" ]; then
    EXTRA+=(-DCUDAToolkit_ROOT="$CUDA_ROOT" -DCMAKE_CUDA_COMPILER="$CUDA_ROOT/bin/nvcc")
  else
    echo "setup: no CUDA toolkit at $CUDA_ROOT (set CUDA_HOME): LibTorch's CUDA targets may not configure" >&2
  fi
elif [ "$SANITIZE" != 0 ]; then
  GUI=OFF
  # -O1 with line tables: the usual sanitizer settings, and quicker to build than -O2 -g.
  EXTRA+=(-DDARTLENS_SANITIZE=ON "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")
  if [ "$SANITIZE" = 1 ]; then
    BUILD_DIR=${BUILD_DIR:-build-asan}
    # gtest_discover_tests runs every test binary during the build; LibTorch's static-init leaks
    # would fail it under LeakSanitizer.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
  else
    BUILD_DIR=${BUILD_DIR:-build-fuzz}
    EXTRA+=(-DCMAKE_CXX_COMPILER=clang++ -DDARTLENS_FUZZ=ON)
    TARGET=(--target fuzz)
  fi
else
  BUILD_DIR=${BUILD_DIR:-build}
fi
JOBS=${JOBS:-$(nproc)}
mkdir -p "$BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDARTLENS_BUILD_GUI=$GUI \
  -DDARTLENS_PYTHON="$PYTHON" "${EXTRA[@]}" >"$BUILD_DIR/configure.log" 2>&1 ||
  { cat "$BUILD_DIR/configure.log" >&2; echo "setup: cmake configure failed" >&2; exit 1; }
grep "DartLens:" "$BUILD_DIR/configure.log" >&2 || true
cmake --build "$BUILD_DIR" -j "$JOBS" "${TARGET[@]}"
