#!/usr/bin/env bash
# The model card's table: a trained scene-world model on held-out scenes (set seed 4242; training
# used seeds >= 100000), unpruned and pruned by DART, FastV and random at 64 / 128 / 192 kept image
# tokens, greedy. POPE (3 splits), the scene questions (describe / colour / count / position) and
# CHAIR on describe captions, all through `dartlens-cli eval`.
# Usage: tools/shapes/evaluate.sh [MODEL_DIR] [OUT_DIR] [SCENES]   (defaults: the bundled model,
#        build/shapes-eval, 100 scenes). Env: CLI (default build/bin/dartlens-cli), THREADS (2),
#        TASKS (default "pope scenes chair").
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-resources/models/dartlens-shapes}
OUT=${2:-build/shapes-eval}
N=${3:-100}
CLI=${CLI:-build/bin/dartlens-cli}
T=${THREADS:-2}
METHODS="none,dart,fastv,random"
KEEP="64,128,192"
mkdir -p "$OUT"
"$CLI" scenes --count "$N" --seed 4242 --size 336x336 --out "$OUT/scenes" --overwrite >/dev/null
for task in ${TASKS:-pope scenes chair}; do
  dir=$OUT/$task; [ "$task" = scenes ] && dir=$OUT/scenes-q   # $OUT/scenes holds the pictures
  rm -rf "$dir"
  start=$(date +%s)
  case $task in
    pope) "$CLI" eval --task pope --questions "$OUT/scenes/questions.jsonl" -m "$MODEL" --method $METHODS \
            --keep $KEEP -n 6 -t "$T" --out "$OUT/pope" ;;
    scenes) "$CLI" eval --task scenes --questions "$OUT/scenes/questions_other.jsonl" -m "$MODEL" --method $METHODS \
              --keep $KEEP -n 64 -t "$T" --out "$OUT/scenes-q" ;;
    chair) "$CLI" eval --task chair --annotations "$OUT/scenes/instances.json" --images "$OUT/scenes" \
             --synonyms resources/chair/scenes_synonyms.txt --prompt "What objects are in this picture?" -m "$MODEL" \
             --method $METHODS --keep $KEEP -n 64 -t "$T" --out "$OUT/chair" ;;
  esac
  echo "evaluate: $task took $(( $(date +%s) - start )) s" >&2
done
echo "evaluate: tables in $OUT/{pope,scenes-q,chair}/results.md" >&2
