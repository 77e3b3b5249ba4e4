#!/usr/bin/env python3
"""The Hugging Face peer of `dartlens-cli bench` (issue 13): the same llava-hf checkpoint, picture,
prompt tokens and thread count through transformers (eager and sdpa attention), side by side with
DartLens's unpruned run, in each compute dtype.

Both sides get identical inputs: DartLens's own prompt ids (image placeholder expanded to the span)
and preprocessed pixels (`dartlens-cli run --json --dump-pixels`), so only the engines differ.
Timed per side, medians of REPS after one warm-up:
  vision   the vision tower + projector (HF: model.get_image_features)
  prefill  the language model over the whole prompt (HF: a full forward minus its vision time)
  decode   per generated token (HF: generate of N tokens minus generate of 1, over N - 1)
The ratio columns are DartLens / HF (below 1: DartLens faster).

Usage (the venv of scripts/venv.sh: torch 2.x, transformers):
  python tools/hf_peer.py -m MODEL_DIR [--image F] [-p TEXT] [-t 2] [-n 16] [-r 3]
      [--dtype f32,bf16] [--attn eager,sdpa] [--cli build/bin/dartlens-cli]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def dartlens(cli, model, image, prompt, threads, n, reps, dtype):
    """DartLens's unpruned medians from bench's JSON: (vision ms, prefill ms, decode ms/token)."""
    out = subprocess.run([cli, "bench", "-m", model, "--image", image, "-p", prompt, "--method", "none", "-r", str(reps),
                          "--warmup", "1", "-n", str(n), "-t", str(threads), "--dtype", dtype, "-o", "json",
                          "--no-gemm-peak", "--no-prefix-cache"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"hf_peer: dartlens-cli bench failed: {out.stderr.strip()[-500:]}")
    r = json.loads(out.stdout)["results"][0]
    return r["vision_ms"], r["prefill_ms"], r["decode_ms_per_token"]


def inputs_of(cli, model, image, prompt, threads, work):
    """DartLens's prompt ids with the image span expanded, its pixel values and the picture's
    (height, width), which LLaVA-NeXT's unpadding needs."""
    import numpy as np
    js, px = os.path.join(work, "run.json"), os.path.join(work, "pixels.npy")
    out = subprocess.run([cli, "run", "-m", model, "--image", image, "-p", prompt, "-n", "1", "-t", str(threads),
                          "--json", js, "--dump-pixels", px], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"hf_peer: dartlens-cli run failed: {out.stderr.strip()[-500:]}")
    rep = json.load(open(js))
    ids, span = rep["prompt_ids"], rep["image_span"]
    image_id = ids[span["start"]]
    expanded = ids[:span["start"]] + [image_id] * span["length"] + ids[span["start"] + 1:]
    grid = rep["image_grid"]
    return expanded, np.load(px), (grid["original_height"], grid["original_width"])


def median_ms(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def hf(model_dir, ids, pixels, size, threads, n, reps, dtype, attn):
    import torch
    from transformers import AutoConfig, LlavaForConditionalGeneration, LlavaNextForConditionalGeneration
    torch.set_num_threads(threads)
    cfg = AutoConfig.from_pretrained(model_dir)
    cls = LlavaNextForConditionalGeneration if cfg.model_type == "llava_next" else LlavaForConditionalGeneration
    td = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[dtype]
    model = cls.from_pretrained(model_dir, dtype=td, attn_implementation=attn).eval()
    input_ids = torch.tensor([ids])
    pv = torch.from_numpy(pixels).to(td)
    kw = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    image = {"pixel_values": pv}
    if cfg.model_type == "llava_next":  # [1, 1 + tiles, 3, S, S] and the picture's size
        image = {"pixel_values": pv[None], "image_sizes": torch.tensor([list(size)])}
    kw.update(image)
    with torch.inference_mode():
        vision = median_ms(lambda: model.get_image_features(**image), reps)
        full = median_ms(lambda: model(**kw), reps)
        one = median_ms(lambda: model.generate(**kw, do_sample=False, max_new_tokens=1, min_new_tokens=1), reps)
        gen = median_ms(lambda: model.generate(**kw, do_sample=False, max_new_tokens=n, min_new_tokens=n), reps)
    return vision, full - vision, (gen - one) / max(n - 1, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--image", default=os.path.join(os.path.dirname(__file__), "..", "resources", "sample.jpg"))
    ap.add_argument("-p", "--prompt", default="Describe the image in detail.")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-n", "--n-predict", type=int, default=16)
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("--dtype", default="f32,bf16")
    ap.add_argument("--attn", default="eager,sdpa")
    ap.add_argument("--cli", default="build/bin/dartlens-cli")
    a = ap.parse_args()
    import torch
    import transformers
    transformers.utils.logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as work:
        ids, pixels, size = inputs_of(a.cli, a.model, a.image, a.prompt, a.threads, work)
    print(f"model {a.model} | S = {len(ids)} | threads {a.threads} | n = {a.n_predict} | reps {a.reps} (+1 warm-up) | "
          f"torch {torch.__version__}, transformers {transformers.__version__}\n")
    print("| dtype | engine | vision ms | prefill ms | decode ms/token | DartLens / HF: vision | prefill | decode |")
    print("|---|---|---|---|---|---|---|---|")
    for dtype in a.dtype.split(","):
        dv, dp, dd = dartlens(a.cli, a.model, a.image, a.prompt, a.threads, a.n_predict, a.reps, dtype)
        print(f"| {dtype} | DartLens | {dv:.1f} | {dp:.1f} | {dd:.2f} | | | |")
        for attn in a.attn.split(","):
            hv, hp, hd = hf(a.model, ids, pixels, size, a.threads, a.n_predict, a.reps, dtype, attn)
            print(f"| {dtype} | HF {attn} | {hv:.1f} | {hp:.1f} | {hd:.2f} | {dv / hv:.2f} | {dp / hp:.2f} | "
                  f"{dd / hd if hd > 0 else float('nan'):.2f} |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
