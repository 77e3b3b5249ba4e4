#!/usr/bin/env bash
# Sets DartLens up and runs the main job: the GUI on the bundled demo model and image.
# Without a display it falls back to headless: a screenshot of the real window rendered under
# Xvfb (build/dartlens-demo.png) plus the CLI comparison of none / DART / FastV on the same input.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BIN=${BUILD_DIR:-build}/bin
DEMO=${BUILD_DIR:-build}/demo-model
IMAGE=resources/sample.jpg
QUESTION=${QUESTION:-"What objects are in this picture?"}
if [ ! -f "$DEMO/config.json" ]; then
  "$BIN/dartlens-cli" make-model --preset llava-geom-small --out "$DEMO" --seed 0
fi
export DARTLENS_DEMO_MODEL="$PWD/$DEMO"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec "$BIN/dartlens" --model "$DEMO" --image "$IMAGE" --question "$QUESTION"
fi
echo "run: no display; headless fallback (Xvfb screenshot + CLI comparison)" >&2
xvfb-run -a "$BIN/dartlens" --screenshot build/dartlens-demo.png --model "$DEMO" --image "$IMAGE" \
  --question "$QUESTION" --run
echo "run: wrote build/dartlens-demo.png" >&2
"$BIN/dartlens-cli" run -m "$DEMO" --image "$IMAGE" -p "$QUESTION" -n 24 --compare none,dart,fastv \
  --keep 64 --json build/dartlens-demo.json
echo "run: wrote build/dartlens-demo.json" >&2
