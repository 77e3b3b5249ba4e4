#!/usr/bin/env bash
# Sets DartLens up and runs the main job: the GUI on the demo model and a scene of the scene world.
# Without a display it falls back to headless: a screenshot of the real window rendered under
# Xvfb (build/dartlens-demo.png) plus the CLI comparison of none / DART / FastV on the same input.
# Env: DARTLENS_TORCH=debian (default) | pip: which LibTorch build to run (README, "Two LibTorch
# builds": on CPUs the two are equally fast in f32 and Debian's is ~10% faster in bf16, while the
# PyTorch one costs a 4.9 GB venv, so the light Debian build is the default).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH=${DARTLENS_TORCH:-debian}
DEFAULT_BUILD=build
[ "$TORCH" = pip ] && DEFAULT_BUILD=build-pip
BUILD_DIR=${BUILD_DIR:-$DEFAULT_BUILD}
export BUILD_DIR
if [ "$TORCH" = pip ]; then scripts/setup.sh --torch pip; else DARTLENS_NO_VENV=1 scripts/setup.sh; fi
BIN=$BUILD_DIR/bin
# The demo model: resources/models/dartlens-shapes, trained on the scene world by tools/shapes
# (the random-weight preset only if that folder is missing). The picture is a scene of the scene
# world: scenes.jsonl beside it fills "Objects present", so hallucination flags have ground truth.
DEMO=${DEMO_MODEL:-resources/models/dartlens-shapes}
if [ ! -f "$DEMO/config.json" ]; then
  DEMO=$BUILD_DIR/demo-model
  [ -f "$DEMO/config.json" ] || "$BIN/dartlens-cli" make-model --preset llava-geom-small --out "$DEMO" --seed 0
fi
SCENES=$BUILD_DIR/demo-scenes
SCENE_SEED=${SCENE_SEED:-2026}
if [ ! -f "$SCENES/scenes.jsonl" ] || [ "$(cat "$SCENES/.seed" 2>/dev/null)" != "$SCENE_SEED" ]; then
  "$BIN/dartlens-cli" scenes --count 8 --seed "$SCENE_SEED" --size 336x336 --out "$SCENES" --overwrite >/dev/null
  echo "$SCENE_SEED" > "$SCENES/.seed"
fi
IMAGE=${IMAGE:-$SCENES/scene_000000.png}
QUESTION=${QUESTION:-"What objects are in this picture?"}
case $DEMO in /*) export DARTLENS_DEMO_MODEL="$DEMO" ;; *) export DARTLENS_DEMO_MODEL="$PWD/$DEMO" ;; esac
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec "$BIN/dartlens" --model "$DEMO" --image "$IMAGE" --question "$QUESTION"
fi
echo "run: no display; headless fallback (Xvfb screenshot + CLI comparison)" >&2
xvfb-run -a "$BIN/dartlens" --screenshot "$BUILD_DIR/dartlens-demo.png" --model "$DEMO" --image "$IMAGE" \
  --question "$QUESTION" --run
echo "run: wrote $BUILD_DIR/dartlens-demo.png" >&2
"$BIN/dartlens-cli" run -m "$DEMO" --image "$IMAGE" -p "$QUESTION" -n 24 --compare none,dart,fastv \
  --keep 64 --json "$BUILD_DIR/dartlens-demo.json"
echo "run: objects really in $IMAGE: $(grep "\"$(basename "$IMAGE")\"" "$SCENES/scenes.jsonl" | grep -o '"class":"[a-z]*"' | cut -d\" -f4 | sort -u | paste -sd, -)" >&2
echo "run: wrote $BUILD_DIR/dartlens-demo.json" >&2
