#!/usr/bin/env bash
# Installs DartLens's Debian packages (when missing) and builds it into ./build.
# Usage: scripts/setup.sh [--no-gui]    Env: BUILD_DIR (default build), JOBS (default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(cmake g++ make pkg-config libgtest-dev qt6-base-dev libqt6opengl6-dev qt6-charts-dev qt6-svg-dev
      libtorch-dev libopenblas0-openmp libopencv-dev libsentencepiece-dev sentencepiece
      nlohmann-json3-dev libcli11-dev xvfb xauth)
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
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
GUI=ON
[ "${1:-}" = "--no-gui" ] && GUI=OFF
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDARTLENS_BUILD_GUI=$GUI >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
