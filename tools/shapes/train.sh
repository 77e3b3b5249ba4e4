#!/bin/sh
# Trains dartlens-shapes from scratch (RECIPE in train.py) on this machine's 2 cores: stages A and
# B side by side (one thread each; B waits for the tokenizer A trains first), then P, C and C2 on two
# threads. Prints and writes WORK/time.txt: how long each part took, in seconds.
# usage: tools/shapes/train.sh WORK [CLI]      (then: train.py --work WORK --export DIR)
set -eu
W=${1:?usage: tools/shapes/train.sh WORK [CLI]}
CLI=${2:-build/bin/dartlens-cli}
PY=${PY:-$(scripts/venv.sh)/bin/python}
T=tools/shapes/train.py
mkdir -p "$W"
start=$(date +%s)
"$PY" $T --cli "$CLI" --work "$W" --only 0 --threads 1 --f32 > "$W/A.log" 2>&1 &
a=$!
until grep -q "^params" "$W/A.log" 2>/dev/null; do
    kill -0 $a 2>/dev/null || { cat "$W/A.log"; exit 1; }
    sleep 2
done
"$PY" $T --cli "$CLI" --work "$W" --only 1 --threads 1 --f32 > "$W/B.log" 2>&1
wait $a
ab=$(date +%s)
"$PY" $T --cli "$CLI" --work "$W" --threads 2 --f32 > "$W/PC.log" 2>&1
end=$(date +%s)
echo "A and B side by side $((ab - start)) s; P, C and C2 $((end - ab)) s; in all $((end - start)) s" | tee "$W/time.txt"
