#!/usr/bin/env python3
"""Trains dartlens-shapes: a small LLaVA-1.5 (CLIP ViT 336/14 -> 576 image tokens, 2-layer GELU
projector, Llama decoder, SentencePiece tokenizer) from scratch on DartLens's scene world, with
Hugging Face transformers' own LlavaForConditionalGeneration, so the checkpoint is what HF writes
and loads. No token pruning is in the loop, and no checkpoint is chosen by any score: the run
trains for a fixed number of steps and the last weights are the model.

Recipe (all in RECIPE below; the model card repeats it):
  - data: `dartlens-cli scenes --size 336x336` sets with seeds TRAIN_SEED_BASE + k (k = 0, 1, ...),
    CHUNK scenes each, generated while training runs; every scene is seen once (no epochs). The
    held-out evaluation uses other set seeds (tools/shapes/README.md).
  - one sample = one scene as a multi-turn conversation (llava_v1 or llava-hf template at random):
    describe, existence (Yes/No, present and absent classes), colour, count and position
    questions in random order; loss on the answers (and their </s>) only.
  - an auxiliary dense loss during training only: a linear head on the image features the
    projector reads predicts, for every patch, the class and colour of the object whose box
    covers the patch centre (the last drawn wins; "none" elsewhere), so that the from-scratch
    ViT learns to see within the CPU budget. The head is not part of the exported checkpoint.
  - AdamW, linear warm-up then cosine decay, fixed seed; float32 weights, bfloat16 autocast.

Usage (from the repository root, the venv of scripts/venv.sh):
  python tools/shapes/train.py --cli build/bin/dartlens-cli --work /tmp/shapes-work
  python tools/shapes/train.py ... --export resources/models/dartlens-shapes   (after training)
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import threading
import time

RECIPE = {
    "train_seed_base": 100000,     # scene set seeds 100000, 100001, ... (held-out sets use seeds < 1000)
    "chunk": 2000,                 # scenes per generated set
    "size": 336,                   # scenes are 336x336: the processor's resize and crop are identities
    "steps": 3400,
    # The run that made the committed weights was started with a 2400-step cosine schedule and
    # lengthened twice while it was still learning to see (before any model output was scored
    # with pruning): to 3400 steps at step 1000, then to 3000 (the time budget) at step 1250.
    # (start step, total steps of the cosine) for the steps from `start` on; the question
    # sampler was re-seeded at each change, as the resumed run did. Reproduces that run exactly.
    "schedule": [[0, 2400], [1000, 3400], [1250, 3000], [1750, 3400]],
    # From step 1750 on (stage 2) a second auxiliary loss ties the image tokens the decoder reads
    # to words: each projected image token's dot products with the input embeddings of the 16 class
    # words (and, separately, the 10 colour words), plus a learnt "none" logit, predict the patch's
    # class (colour). Stage 1 alone had learnt to see the scene type, not to answer per class.
    "align_from": 1750,
    "align_weight": 1.0,
    "batch": 8,
    "lr": 1.5e-3,
    "warmup": 200,
    "weight_decay": 0.05,
    "seed": 1,
    "spm_vocab": 1000,
    "aux_weight": 1.0,             # dense patch class/colour loss (training only)
    "vision": dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4),
    "text": dict(hidden_size=192, intermediate_size=512, num_hidden_layers=4, num_attention_heads=3,
                 num_key_value_heads=3),
}

CLASSES = ["house", "tree", "car", "boat", "sun", "cloud", "person", "dog", "cat", "bird", "fish", "flower",
           "ball", "star", "umbrella", "cup"]
COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"]
SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. The assistant gives "
          "helpful, detailed, and polite answers to the human's questions.")
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def plural(c):
    return {"person": "people", "fish": "fish"}.get(c, c + "s")


def article(w):
    return "an" if w[0] in "aeiou" else "a"


# ---------------------------------------------------------------------------------------------
# text


def describe(objects):
    """The describe answer as core/scenes.cpp words it, groups ordered left to right (by the
    leftmost box centre of the group), which a model can see; the evaluation is order-free."""
    groups = {}
    for o in objects:
        key = (o["color"], o["class"])
        cx = (o["box"][0] + o["box"][2]) / 2
        n, x = groups.get(key, (0, 1e9))
        groups[key] = (n + 1, min(x, cx))
    items = sorted(groups.items(), key=lambda kv: kv[1][1])
    if not items:
        return "There are no objects."
    parts = []
    for (color, cls), (n, _) in items:
        parts.append(f"{article(color)} {color} {cls}" if n == 1 else f"{NUMBER_WORDS[min(n, 8)]} {color} {plural(cls)}")
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return ("There is " if items[0][1][0] == 1 else "There are ") + text + "."


def scene_qa(scene, rng):
    """Question/answer pairs about one scene (training distribution; see the module doc)."""
    objs = scene["objects"]
    counts = {}
    for o in objs:
        counts[o["class"]] = counts.get(o["class"], 0) + 1
    present = list(counts)
    absent = [c for c in CLASSES if c not in counts]
    qa = [("What objects are in this picture?", describe(objs))]
    k = min(len(present), 3)
    for c in rng.sample(present, k):
        qa.append((f"Is there {article(c)} {c} in the image?", "Yes"))
    for c in rng.sample(absent, min(len(absent), k + 1)):
        qa.append((f"Is there {article(c)} {c} in the image?", "No"))
    unique = [c for c in present if counts[c] == 1]
    for c in rng.sample(unique, min(len(unique), 2)):
        color = next(o["color"] for o in objs if o["class"] == c)
        qa.append((f"What color is the {c}?", color.capitalize()))
    for c in rng.sample(present, min(len(present), 2)):
        qa.append((f"How many {plural(c)} are there?", str(counts[c])))
    if absent and rng.random() < 0.3:
        c = rng.choice(absent)
        qa.append((f"How many {plural(c)} are there?", "0"))
    w = scene["width"]
    rng.shuffle(unique)
    box = {o["class"]: o["box"] for o in objs}
    for a in unique:
        others = [b for b in unique if b != a and (box[a][2] <= box[b][0] or box[b][2] <= box[a][0])]
        if others:
            b = rng.choice(others)
            side = "Left" if box[a][2] <= box[b][0] else "Right"
            qa.append((f"Is the {a} to the left or to the right of the {b}?", side))
            break
    for a in unique:
        x0, x1 = box[a][0], box[a][2]
        where = "Left" if x1 <= w // 3 else "Right" if x0 >= w - w // 3 else \
            "Middle" if x0 >= w // 3 and x1 <= w - w // 3 else None
        if where:
            qa.append((f"Where is the {a}: left, middle or right?", where))
            break
    rng.shuffle(qa)
    return qa


def spm_corpus():
    rng = random.Random(7)
    lines = [SYSTEM, "USER: ASSISTANT:", "Yes", "No", "Left", "Right", "Middle", "left, middle or right"]
    for c in CLASSES:
        for col in COLORS:
            lines.append(f"There is {article(col)} {col} {c}. There are {rng.choice(NUMBER_WORDS[2:])} {col} {plural(c)}.")
        lines += [f"Is there {article(c)} {c} in the image?", f"What color is the {c}?",
                  f"How many {plural(c)} are there?", f"Where is the {c}: left, middle or right?"]
        for d in CLASSES:
            lines.append(f"Is the {c} to the left or to the right of the {d}?")
    lines += [col.capitalize() for col in COLORS] + [str(i) for i in range(10)]
    lines.append("What objects are in this picture? Describe the image. What is in the picture?")
    return "\n".join(lines * 3) + "\n"


def train_spm(work, vocab_size):
    import sentencepiece as spm
    model = os.path.join(work, "tokenizer.model")
    if os.path.exists(model):
        return model
    corpus = os.path.join(work, "spm_corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write(spm_corpus())
    # LLaMA's options (as core/make_model.cpp and tests/hf): BPE, byte fallback, split digits.
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(work, "tokenizer"), model_type="bpe", vocab_size=vocab_size,
        hard_vocab_limit=False, byte_fallback=True, split_digits=True, normalization_rule_name="identity",
        add_dummy_prefix=True, remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
        character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    return model


class Encoder:
    """Token ids as DartLens and LLaVA build them: [bos] + sp(before <image>) + [image] + sp(after),
    each segment with SentencePiece's dummy prefix; answers sp(answer) + [eos]."""

    def __init__(self, spm_model, n_image):
        import sentencepiece as spm
        self.sp = spm.SentencePieceProcessor(model_file=spm_model)
        self.n = self.sp.get_piece_size()
        self.image_id, self.pad_id = self.n, self.n + 1
        self.n_image = n_image

    def sample(self, qa, template):
        """(ids, labels) for one conversation; labels -100 where no loss."""
        ids, labels = [1], [-100]

        def add(text, learn):
            t = self.sp.encode(text)
            ids.extend(t)
            labels.extend(t if learn else [-100] * len(t))

        for i, (q, a) in enumerate(qa):
            if i == 0:
                add((SYSTEM + " USER: ") if template == "llava_v1" else "USER: ", False)
                ids.extend([self.image_id] * self.n_image)
                labels.extend([-100] * self.n_image)
                add("\n" + q + " ASSISTANT:", False)
            else:
                add("USER: " + q + " ASSISTANT:", False)
            add(a, True)
            ids.append(2)
            labels.append(2)
        return ids, labels


# ---------------------------------------------------------------------------------------------
# data


class SceneStream:
    """Generates scene sets with dartlens-cli one chunk ahead of training, in a thread."""

    def __init__(self, cli, work, recipe):
        self.cli, self.work, self.r = cli, work, recipe
        self.next_k = 0
        self.pending = None
        self._start(0)

    def _dir(self, k):
        return os.path.join(self.work, f"set{self.r['train_seed_base'] + k}")

    def _gen(self, k):
        d = self._dir(k)
        if os.path.exists(os.path.join(d, "scenes.jsonl")):
            return
        size = self.r["size"]
        subprocess.run([self.cli, "scenes", "--count", str(self.r["chunk"]), "--seed", str(self.r["train_seed_base"] + k),
                        "--out", d, "--size", f"{size}x{size}", "--overwrite"], check=True, stdout=subprocess.DEVNULL)

    def _start(self, k):
        self.pending = (k, threading.Thread(target=self._gen, args=(k,)))
        self.pending[1].start()

    def next_chunk(self):
        import numpy as np
        from PIL import Image
        k, th = self.pending
        th.join()
        self._start(k + 1)
        d = self._dir(k)
        scenes = [json.loads(line) for line in open(os.path.join(d, "scenes.jsonl"))]
        pixels = np.stack([np.asarray(Image.open(os.path.join(d, s["image"])).convert("RGB")) for s in scenes])
        return k, scenes, pixels


def patch_labels(scene, size, patch=14):
    """Per patch (row-major grid): class index + 1 and colour index + 1 of the last-drawn object
    whose box covers the patch centre, 0 where none does."""
    import numpy as np
    g = size // patch
    centre = np.arange(g) * patch + patch // 2
    cls = np.zeros((g, g), dtype=np.int64)
    col = np.zeros((g, g), dtype=np.int64)
    for o in scene["objects"]:
        x0, y0, x1, y1 = o["box"]
        rows = (centre >= y0) & (centre < y1)
        cols = (centre >= x0) & (centre < x1)
        m = rows[:, None] & cols[None, :]
        cls[m] = CLASSES.index(o["class"]) + 1
        col[m] = COLORS.index(o["color"]) + 1
    return cls.reshape(-1), col.reshape(-1)


def to_pixel_values(batch_u8):
    """CLIPImageProcessor on 336x336 RGB: rescale 1/255, normalise (resize and crop are identities)."""
    import torch
    x = torch.from_numpy(batch_u8).permute(0, 3, 1, 2).float() * (1 / 255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


# ---------------------------------------------------------------------------------------------
# model


def build_model(recipe, sp_pieces, image_id, pad_id):
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
    vocab = (sp_pieces + 2 + 63) // 64 * 64
    vision = CLIPVisionConfig(image_size=recipe["size"], patch_size=14, projection_dim=64, hidden_act="quick_gelu",
                              layer_norm_eps=1e-5, **recipe["vision"])
    text = LlamaConfig(vocab_size=vocab, rms_norm_eps=1e-5, max_position_embeddings=2048, rope_theta=10000.0,
                       bos_token_id=1, eos_token_id=2, pad_token_id=pad_id, tie_word_embeddings=False,
                       **recipe["text"])
    n_image = (recipe["size"] // 14) ** 2
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_id,
                         vision_feature_layer=-1, vision_feature_select_strategy="default",
                         image_seq_length=n_image, projector_hidden_act="gelu", pad_token_id=pad_id)
    torch.manual_seed(recipe["seed"])
    return LlavaForConditionalGeneration(config)


def collate(samples, pad_id):
    import torch
    n = max(len(s[0]) for s in samples)
    ids = torch.full((len(samples), n), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), n), -100, dtype=torch.long)
    mask = torch.zeros((len(samples), n), dtype=torch.long)
    for i, (a, b) in enumerate(samples):
        ids[i, :len(a)] = torch.tensor(a)
        labels[i, :len(b)] = torch.tensor(b)
        mask[i, :len(a)] = 1
    return ids, labels, mask


def total_steps_at(step, r):
    total = r["steps"]
    for start, steps in r.get("schedule", []):
        if step >= start:
            total = steps
    return total


def lr_at(step, r):
    if step < r["warmup"]:
        return r["lr"] * (step + 1) / r["warmup"]
    total = total_steps_at(step, r)
    t = (step - r["warmup"]) / max(1, total - r["warmup"])
    return r["lr"] * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def train(args):
    import numpy as np
    import torch
    r = dict(RECIPE)
    if args.steps:
        r["steps"] = args.steps
        r["schedule"] = []
    torch.set_num_threads(args.threads)
    os.makedirs(args.work, exist_ok=True)
    spm_model = train_spm(args.work, r["spm_vocab"])
    n_image = (r["size"] // 14) ** 2
    enc = Encoder(spm_model, n_image)
    model = build_model(r, enc.n, enc.image_id, enc.pad_id)
    n_params = sum(p.numel() for p in model.parameters())
    vis_dim = r["vision"]["hidden_size"]
    aux = torch.nn.Linear(vis_dim, (len(CLASSES) + 1) + (len(COLORS) + 1))
    captured = {}
    def capture(mod, inp, out):  # returns None: the projector's output is not replaced
        captured["f"], captured["p"] = inp[0], out
    model.model.multi_modal_projector.register_forward_hook(capture)
    none_bias = torch.nn.Parameter(torch.zeros(2))
    class_tok = [enc.sp.encode(c)[0] for c in CLASSES]
    color_tok = [enc.sp.encode(c)[0] for c in COLORS]
    print(f"params {n_params / 1e6:.2f} M, vocab {enc.n} pieces", flush=True)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n] + [aux.weight]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)] + [aux.bias, none_bias]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": r["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=r["lr"], betas=(0.9, 0.98))
    ckpt = os.path.join(args.work, "train_state.pt")
    step = 0
    if os.path.exists(ckpt):
        st = torch.load(ckpt, weights_only=False)
        model.load_state_dict(st["model"])
        aux.load_state_dict(st["aux"])
        if "none_bias" in st:
            none_bias.data.copy_(st["none_bias"])
        if len(st["opt"]["param_groups"][1]["params"]) == len(opt.param_groups[1]["params"]):
            opt.load_state_dict(st["opt"])
        else:  # a checkpoint from before stage 2: the new parameter starts with fresh moments
            old = opt.state_dict()
            so = st["opt"]
            n_new = len(old["param_groups"][1]["params"]) - len(so["param_groups"][1]["params"])
            assert n_new == 1
            so["param_groups"][1]["params"] = old["param_groups"][1]["params"]
            opt.load_state_dict(so)
        step = st["step"]
        print(f"resumed at step {step}", flush=True)
    rng = random.Random(r["seed"] * 7919 + step)
    stream = SceneStream(args.cli, args.work, r)
    per_chunk = r["chunk"] // r["batch"]
    # skip the chunks already consumed (each scene once, in order)
    for _ in range(step // per_chunk):
        stream.pending[1].join()
        k = stream.pending[0]
        stream._start(k + 1)
    model.train()
    t0 = time.time()
    log = open(os.path.join(args.work, "train_log.jsonl"), "a")
    ema = None
    while step < r["steps"]:
        k, scenes, pixels = stream.next_chunk()
        order = list(range(len(scenes)))
        start = (step % per_chunk) * r["batch"]
        for b0 in range(start, len(order) - r["batch"] + 1, r["batch"]):
            if step >= r["steps"]:
                break
            if any(step == start for start, _ in r.get("schedule", [])[1:]):
                rng = random.Random(r["seed"] * 7919 + step)  # as the resumed run re-seeded
            idx = order[b0:b0 + r["batch"]]
            samples = [enc.sample(scene_qa(scenes[i], rng), rng.choice(["llava_v1", "llava-hf"])) for i in idx]
            ids, labels, mask = collate(samples, enc.pad_id)
            pv = to_pixel_values(pixels[idx])
            for g in opt.param_groups:
                g["lr"] = lr_at(step, r)
            labs = [patch_labels(scenes[i], r["size"]) for i in idx]
            pcls = torch.from_numpy(np.stack([a for a, _ in labs]))
            pcol = torch.from_numpy(np.stack([b for _, b in labs]))
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.f32):
                out = model(input_ids=ids, pixel_values=pv, attention_mask=mask, labels=labels)
                al = aux(captured.pop("f")).float()
                proj = captured.pop("p").float()
            nc = len(CLASSES) + 1
            aux_loss = torch.nn.functional.cross_entropy(al[..., :nc].reshape(-1, nc), pcls.reshape(-1)) + \
                torch.nn.functional.cross_entropy(al[..., nc:].reshape(-1, al.shape[-1] - nc), pcol.reshape(-1))
            total = out.loss + r["aux_weight"] * aux_loss
            if step >= r.get("align_from", 1 << 30):
                emb = model.get_input_embeddings().weight
                proj = proj.reshape(len(idx), -1, proj.shape[-1])
                lc = torch.cat([none_bias[0].expand(proj.shape[:2] + (1,)), proj @ emb[class_tok].T], -1)
                lk = torch.cat([none_bias[1].expand(proj.shape[:2] + (1,)), proj @ emb[color_tok].T], -1)
                align_loss = torch.nn.functional.cross_entropy(lc.reshape(-1, lc.shape[-1]), pcls.reshape(-1)) + \
                    torch.nn.functional.cross_entropy(lk.reshape(-1, lk.shape[-1]), pcol.reshape(-1))
                total = total + r["align_weight"] * align_loss
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(list(model.parameters()) + list(aux.parameters()), 1.0)
            opt.step()
            step += 1
            loss = out.loss.item()
            ema = loss if ema is None else 0.98 * ema + 0.02 * loss
            if step % 20 == 0 or step == 1:
                el = time.time() - t0
                print(f"step {step} loss {loss:.4f} ema {ema:.4f} aux {aux_loss.item():.4f} {('align %.4f ' % align_loss.item()) if step > r.get('align_from', 1 << 30) else ''}lr {lr_at(step, r):.2e} {el:.0f}s "
                      f"len {ids.shape[1]}", flush=True)
                log.write(json.dumps({"step": step, "loss": loss, "ema": ema, "aux": aux_loss.item(), "time_s": el}) + "\n")
                log.flush()
            if step % 250 == 0 or step == r["steps"]:
                torch.save({"model": model.state_dict(), "aux": aux.state_dict(), "none_bias": none_bias.data, "opt": opt.state_dict(), "step": step},
                           ckpt + ".tmp")
                os.replace(ckpt + ".tmp", ckpt)
    print(f"done: {step} steps in {time.time() - t0:.0f} s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default="build/bin/dartlens-cli")
    ap.add_argument("--work", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="override RECIPE steps (trials only)")
    ap.add_argument("--f32", action="store_true", help="no bfloat16 autocast")
    ap.add_argument("--export", help="write the llava-hf checkpoint of the trained state to this directory")
    args = ap.parse_args()
    if args.export:
        from export import export  # tools/shapes/export.py
        export(args.work, args.export, RECIPE)
    else:
        train(args)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
