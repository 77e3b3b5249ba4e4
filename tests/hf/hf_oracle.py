#!/usr/bin/env python3
"""Live Hugging Face oracle for DartLens (ctest label `hf`).

Generates tiny random llava-hf checkpoints with transformers itself (LlavaForConditionalGeneration,
save_pretrained, a SentencePiece tokenizer trained here, the tokenizer/processor files of the real
llava-hf/llava-1.5-7b-hf) and checks the public CLI against Hugging Face's own computation:

  tokenizer     dartlens-cli tokenize vs HF's tokenizer of the checkpoint on a varied corpus
  llava NAME..  per configuration (or group of them): prompt ids, preprocessed pixels, last-position logits (f32),
                greedy tokens (HF generate, do_sample=False) and the decoded answer
  list          the configurations (names: the groups, ';'-separated, for CMake)

Nothing here compares DartLens with itself: every expected value comes from transformers, Pillow or
HF's tokenizers. Exit status: 0 pass, 1 fail, 2 bad usage, 77 skipped (no torch/transformers in this
interpreter; the frozen dump tests of tests/data/hf-llava-tiny, run by test_forward, are then the
offline fallback).
"""
import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from llava_hf_files import LLAVA_HF_CHAT_TEMPLATE, dump_json, write_processor_files, write_tokenizer_files  # noqa: E402

SKIP = 77
FALLBACK = "the frozen dump tests (tests/data/hf-llava-tiny, run by test_forward) remain the offline fallback"

# Tolerances (README.md in this folder has the measured figures).
LOGIT_REL_TOL = 1e-4     # max|dl - hf| / max|hf| over the last-position logits, f32 compute
# DartLens's device and compute dtype (scripts/gpu-check.sh runs the cases on cuda in f32 and f16;
# the HF side stays f32 on the CPU). f16/bf16 compute: logits within LOGIT_REL_TOL_HALF, greedy
# tokens still identical.
DL_DEVICE = os.environ.get("DARTLENS_HF_DEVICE", "cpu")
DL_DTYPE = os.environ.get("DARTLENS_HF_DTYPE", "f32")
LOGIT_REL_TOL_HALF = 1e-2
PIXEL_ABS_TOL = 0.0      # DartLens re-implements Pillow's fixed-point bicubic: must be exact

# Prompt templates, transcribed from their sources (not from DartLens): LLaVA's conv_vicuna_v1
# (system + " " + "USER: <image>\n{q}" + " " + "ASSISTANT:") and llava-hf's model card / chat
# template ("USER: <image>\n{q} ASSISTANT:").
VICUNA_V1_SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
                    "The assistant gives helpful, detailed, and polite answers to the human's questions.")

# The rendering rule of llava-hf/llava-1.5-7b-hf's chat template, written out here: per message
# "ROLE: " (not for system), then "<image>\n" for each image item, then each text item + " ";
# "ASSISTANT:" when a generation prompt is asked for.
def skip(why):
    print(f"SKIP: {why}; {FALLBACK}")
    sys.stdout.flush()
    sys.exit(SKIP)


def import_stack():
    """Imports the Python side or exits 77 with one line saying why."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "2")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    missing = []
    for mod in ("numpy", "torch", "transformers", "PIL", "safetensors", "sentencepiece", "google.protobuf",
                "tokenizers"):
        try:
            __import__(mod)
        except Exception as e:  # ImportError, or a broken install raising something else
            missing.append(mod if isinstance(e, ModuleNotFoundError) else f"{mod} ({type(e).__name__}: {e})")
    if missing:
        skip(f"{sys.executable} cannot import {', '.join(missing)} (configure with -DDARTLENS_PYTHON=VENV/bin/python, "
             f"VENV as printed by scripts/venv.sh)")
    import torch
    import transformers
    torch.set_num_threads(2)
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_interop_threads(1)


# ---------------------------------------------------------------------------------------------
# configurations


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    seed: int
    covers: str
    heads: int = 4
    kv_heads: int = 2                   # < heads: GQA; == heads: MHA
    head_dim: int = 0                   # 0: hidden / heads (no "head_dim" key)
    text_layers: int = 2
    rope_theta: float = 10000.0
    feature_layer: int = -2
    strategy: str = "default"           # vision_feature_select_strategy
    image_size: int = 42
    patch: int = 14
    vision_layers: int = 2
    preprocess: str = "crop"            # DartLens --preprocess; "pad" = LLaVA expand2square first
    image: tuple = (61, 37)             # width, height of the input picture
    image_mode: str = "RGB"
    dtype: str = "float32"              # checkpoint dtype (save_pretrained)
    shard: bool = False                 # max_shard_size small -> model.safetensors.index.json
    layout: str = "hub"                 # weight names: see LAYOUTS
    template: str = "llava-hf"
    question: str = "What is shown in this picture?"
    n_predict: int = 8
    force_eos: bool = False             # make greedy decoding stop early with </s>
    extra_images: tuple = ()            # ((w, h, mode), ...): more pictures, pixel check only
    group: str = "llava"                # ctest test hf_<group> (one Python process per group)
    tiles: tuple = ()                   # LLaVA-NeXT: grid pinpoints as (rows, cols) of image_size tiles
    decoder: str = "llama"              # llama | mistral
    window: int = 0                     # mistral sliding_window (0: null)
    prune: tuple = ()                   # ((method, budget B, layer K), ...): pruned runs vs prune_reference

    @property
    def next(self):
        return bool(self.tiles)

    def pinpoints(self):
        return [[r * self.image_size, c * self.image_size] for r, c in self.tiles]


V16 = ((1, 2), (2, 1), (2, 2), (3, 1), (1, 3))   # llava-v1.6's pinpoints, in tiles


CASES = [
    Case("gqa-l2-default-crop-f32", 101, "GQA 4q/2kv, layer -2, default, crop of a wide 61x37 image, llava-hf template; "
         "pixels of 6 more pictures (big downscale, 1-pixel-off square, extreme aspect, L/LA/P modes)",
         template="llava-hf", extra_images=((640, 480, "RGB"), (43, 42, "RGB"), (3, 100, "L"), (200, 7, "LA"),
                                            (77, 51, "P"), (1000, 1000, "RGB")),
         prune=(("fastv", 5, 1),)),
    Case("mha-l1-full-pad-f32", 102, "MHA, layer -1, full (CLS kept), pad of a tall 33x58 image, llava_v1 template; "
         "pixels of 4 more pictures, padded",
         kv_heads=4, feature_layer=-1, strategy="full", image_size=28, preprocess="pad", image=(33, 58),
         template="llava_v1", extra_images=((640, 480, "RGB"), (3, 100, "L"), (200, 7, "LA"), (29, 30, "P"))),
    Case("bf16-mqa-full-crop", 103, "BF16 checkpoint (f32 compute), MQA 4q/1kv, full, 3 text layers, downscale 97x80 -> 56; "
         "DART and FastV at K = 2, DART at B = 4 < 8 pivots (quota 0: the pivots alone)",
         kv_heads=1, strategy="full", text_layers=3, image_size=56, image=(97, 80), dtype="bfloat16",
         template="llava_v1", question="How many 3 colours are there, 12 or 7?",
         prune=(("dart", 8, 2), ("fastv", 8, 2), ("dart", 4, 1))),
    Case("f16-sharded-pad-mha", 104, "F16 checkpoint sharded (index.json), MHA, layer -1, default, pad of 90x50",
         kv_heads=4, feature_layer=-1, dtype="float16", shard=True, preprocess="pad", image=(90, 50),
         template="llava-hf"),
    Case("sharded-upscale", 105, "sharded f32 (index.json), upscale of a 23x31 image -> 28",
         shard=True, image_size=28, image=(23, 31), template="llava_v1"),
    Case("rgba-pad-bf16", 106, "RGBA PNG (alpha dropped as PIL convert), pad, BF16, head_dim 32 != hidden/heads, rope_theta 5e5",
         image_mode="RGBA", preprocess="pad", image=(50, 40), dtype="bfloat16", head_dim=32, rope_theta=500000.0,
         template="llava-hf", question="Describe the colours, please."),
    Case("full-l1-crop-verywide-tf452", 107, "full, layer -1, crop of a 150x41 image (resize to 56 short side), "
         "transformers 4.52-4.57 weight names (model.language_model.*), sharded",
         kv_heads=4, feature_layer=-1, strategy="full", image_size=56, image=(150, 41), shard=True,
         layout="tf452", template="llava-hf"),
    Case("patch8-square-default", 108, "patch 8 / image 32 (16 patches), square 32x32 input (no resize), llava_v1",
         patch=8, image_size=32, image=(32, 32), template="llava_v1", question="Is it a cat or a dog?"),
    Case("eos-stop", 109, "greedy decoding that emits </s>: HF's output ends with eos, DartLens's output_ids without it",
         force_eos=True, n_predict=12, template="llava_v1", image=(44, 44)),
    Case("next-vicuna-wide-unpad-rows", 201, "LLaVA-NeXT (LlavaNextForConditionalGeneration), Llama decoder, v1.6 "
         "pinpoints in 28-px tiles (patch 7), a wide 61x37 picture: 1x2 tiles, padding rows dropped; pixels of 5 more "
         "pictures (tall, square, extreme, tiny, big)",
         tiles=V16, image_size=28, patch=7, image=(61, 37), template="llava-hf", group="llava_next",
         extra_images=((33, 90, "RGB"), (64, 64, "RGB"), (300, 20, "RGB"), (9, 13, "RGB"), (500, 377, "RGB")),
         prune=(("dart", 16, 1), ("fastv", 16, 1), ("dart", 32, 1))),
    Case("next-vicuna-tall-unpad-cols-v1", 202, "LLaVA-NeXT, Llama decoder, MHA, a tall 33x90 picture (3x1 tiles, "
         "padding columns dropped), llava_v1 template",
         tiles=V16, image_size=28, patch=7, image=(33, 90), kv_heads=4, template="llava_v1", group="llava_next",
         prune=(("dart", 24, 1), ("fastv", 20, 1))),
    Case("next-mistral-window", 203, "LLaVA-NeXT with a Mistral decoder (MistralConfig, GQA 4/2) whose sliding window "
         "(40) is shorter than the prompt, a square 50x50 picture (2x2 tiles, nothing unpadded), [INST] template",
         tiles=V16, image_size=28, patch=7, image=(50, 50), decoder="mistral", window=40, template="mistral",
         group="llava_next"),
    Case("tf5-saved-layout", 110, "the files exactly as transformers 5 save_pretrained writes them "
         "(vision tower without .vision_model.)", layout="tf5", template="llava-hf", group="llava_tf5_layout"),
]
CASE_BY_NAME = {c.name: c for c in CASES}
GROUPS = list(dict.fromkeys(c.group for c in CASES))


# ---------------------------------------------------------------------------------------------
# tokenizer (SentencePiece BPE like LLaMA's, trained here) and the llava-hf tokenizer files


def spm_corpus():
    """Deterministic training text: English-like sentences, digits, some non-Latin scripts."""
    import random
    rng = random.Random(1234)
    objects = ["cat", "dog", "table", "chair", "car", "tree", "house", "bird", "cup", "book", "lamp", "phone",
               "picture", "window", "person", "bottle", "flower", "image", "colour", "street"]
    colours = ["red", "green", "blue", "yellow", "black", "white", "brown", "orange", "purple", "grey"]
    verbs = ["sits", "stands", "lies", "waits", "rests", "shines", "hangs", "moves"]
    places = ["on the table", "near the window", "in the garden", "under the tree", "next to the car",
              "behind the house", "in the picture", "on the left", "on the right", "in the middle"]
    questions = ["What is shown in this picture?", "How many", "Describe the", "Is there a", "What colour is",
                 "Where is the", "Which one is", "Please describe the image."]
    extra = ["中文的句子和图片。", "猫在桌子上。", "日本語のテキスト。", "Привет, как дела?", "café naïve résumé",
             "Ünïcödé ñ ç ß", "한국어 문장"]
    lines = []
    for _ in range(1500):
        o, c = rng.choice(objects), rng.choice(colours)
        k = rng.randrange(6)
        if k == 0:
            lines.append(f"The {c} {o} {rng.choice(verbs)} {rng.choice(places)}.")
        elif k == 1:
            lines.append(f"USER: {rng.choice(questions)} the {o}? ASSISTANT: The {o} is {c}.")
        elif k == 2:
            lines.append(f"I count {rng.randrange(1000)} {o}s and {rng.randrange(20)} {rng.choice(objects)}s, "
                         f"about {rng.randrange(100)}.{rng.randrange(10)} cm apart.")
        elif k == 3:
            lines.append(f"A chat between a curious human and an artificial intelligence assistant. "
                         f"The {o} {rng.choice(verbs)} {rng.choice(places)}.")
        elif k == 4:
            lines.append(f"    In the image,  {c} {o}s  {rng.choice(places)};\tthe photo is sharp.")
        else:
            lines.append(rng.choice(extra))
    return "\n".join(lines) + "\n"


def train_spm(work, vocab_size=420):
    """tokenizer.model trained with the Python sentencepiece package; the options mirror
    core/model/make_model.cpp's spm_train call (LLaMA's: BPE, byte fallback, split digits, identity
    normalisation, dummy prefix, whitespace kept)."""
    import sentencepiece as spm
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, "tokenizer.model")
    if os.path.exists(model):
        return model
    # per-process names, then an atomic rename: two tests may train at once (same result)
    corpus = os.path.join(work, f"corpus.tmp{os.getpid()}.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write(spm_corpus())
    prefix = os.path.join(work, f"tokenizer.tmp{os.getpid()}")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=vocab_size, hard_vocab_limit=False,
        byte_fallback=True, split_digits=True, normalization_rule_name="identity", add_dummy_prefix=True,
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    os.replace(prefix + ".model", model)
    os.remove(prefix + ".vocab")
    os.remove(corpus)
    return model


# ---------------------------------------------------------------------------------------------
# checkpoints


def build_model(case, sp_pieces, image_id, pad_id, byte_ids):
    import torch
    from transformers import (CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration,
                              LlavaNextConfig, LlavaNextForConditionalGeneration, MistralConfig)

    vocab = (sp_pieces + 2 + 63) // 64 * 64      # padded like llava-hf's 32064
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=case.vision_layers,
                              num_attention_heads=2, image_size=case.image_size, patch_size=case.patch,
                              projection_dim=16, hidden_act="quick_gelu", layer_norm_eps=1e-5)
    text_kwargs = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=case.text_layers,
                       num_attention_heads=case.heads, num_key_value_heads=case.kv_heads, rms_norm_eps=1e-5,
                       max_position_embeddings=512, rope_theta=case.rope_theta, bos_token_id=1, eos_token_id=2,
                       pad_token_id=pad_id, tie_word_embeddings=False)
    if case.head_dim:
        text_kwargs["head_dim"] = case.head_dim
    if case.decoder == "mistral":
        text = MistralConfig(sliding_window=case.window or None, **text_kwargs)
    else:
        text = LlamaConfig(**text_kwargs)
    grid = case.image_size // case.patch
    n_image = grid * grid + (1 if case.strategy == "full" else 0)
    common = dict(vision_config=vision, text_config=text, image_token_index=image_id,
                  vision_feature_layer=case.feature_layer, vision_feature_select_strategy=case.strategy,
                  image_seq_length=n_image, projector_hidden_act="gelu", pad_token_id=pad_id)
    config = LlavaNextConfig(image_grid_pinpoints=case.pinpoints(), **common) if case.next else LlavaConfig(**common)
    config.text_config.rope_theta = case.rope_theta  # some versions keep it in rope_parameters only
    torch.manual_seed(case.seed)
    model = (LlavaNextForConditionalGeneration if case.next else LlavaForConditionalGeneration)(config).eval()
    # HF's init (std 0.02) makes near-uniform logits; draw O(1) activations instead so that the
    # logits and the greedy choices are well separated and every weight matters.
    g = torch.Generator().manual_seed(case.seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                if "norm" in name:
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name or "position_embedding" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
        lm_head = model.get_output_embeddings().weight
        lm_head[image_id:].zero_()   # <image>, <pad> and the padding rows never win: answers are text
        lm_head[0:2].zero_()         # nor <unk>, <s>
        # nor the byte-fallback pieces: a random run of them is invalid UTF-8, which HF's ByteFallback
        # decoder and SentencePiece (DartLens, the original LLaVA) turn into different U+FFFD runs;
        # with whole pieces only, the decoded answers must agree exactly
        lm_head[byte_ids] = 0.0
    return model


def force_eos(model, case, inputs):
    """Makes HF's greedy decoding emit </s> as its t-th new token (3 <= t <= n_predict - 2): the </s>
    row of lm_head becomes 1.02 x the row of the token the model would pick at step t, chosen so that
    this token's logit stays clearly below the maximum at every earlier step (the tokens before t are
    then those of the model without </s>). Returns t."""
    import torch
    w = model.get_output_embeddings().weight
    n0 = inputs["input_ids"].shape[1]
    with torch.no_grad():
        w[2] = 0.0
        gen = model.generate(**inputs, do_sample=False, max_new_tokens=case.n_predict, output_logits=True,
                             return_dict_in_generate=True)
    seq = gen.sequences[0, n0:].tolist()
    logits = [l[0].float() for l in gen.logits]
    for t in range(3, min(len(seq), case.n_predict - 1)):
        x = seq[t - 1]
        m = float(logits[t - 1].max())
        earlier_ok = all(1.02 * float(logits[j][x]) < float(logits[j].max()) - 0.05 * abs(float(logits[j].max()))
                         for j in range(t - 1))
        if x > 2 and m > 0 and earlier_ok:
            with torch.no_grad():
                w[2] = 1.02 * w[x]
            new = model.generate(**inputs, do_sample=False, max_new_tokens=case.n_predict)[0, n0:].tolist()
            if new == seq[:t - 1] + [2]:
                return t
            raise RuntimeError(f"{case.name}: </s> construction failed: {new} vs {seq[:t - 1]} + [2]")
    raise RuntimeError(f"{case.name}: no step qualifies for an early </s>; pick another seed")


# Weight-name layouts, as prefix maps from what transformers 5.24's save_pretrained writes:
#   hub    llava-hf/llava-1.5-7b-hf on the Hub (language_model.model.*, vision_tower.vision_model.*)
#   tf452  transformers 4.52 .. 4.57 save_pretrained (model.language_model.*, lm_head.*, ...)
#   tf5    transformers 5 save_pretrained as is (CLIP flattened: vision_tower.embeddings.*)
SAVED_PREFIXES = ("language_model.model.", "language_model.lm_head.", "vision_tower.", "multi_modal_projector.",
                  "image_newline")  # the last: LLaVA-NeXT's row separator, top level in the Hub layout
LAYOUTS = {
    "hub": {"vision_tower.": "vision_tower.vision_model."},
    "tf452": {"language_model.model.": "model.language_model.", "language_model.lm_head.": "lm_head.",
              "vision_tower.": "model.vision_tower.vision_model.",
              "multi_modal_projector.": "model.multi_modal_projector.", "image_newline": "model.image_newline"},
    "tf5": {},
}


def layout_names(state_keys, layout):
    out = {}
    for k in state_keys:
        prefix = next((p for p in SAVED_PREFIXES if k.startswith(p)), None)
        if prefix is None:
            raise RuntimeError(f"save_pretrained wrote an unexpected weight name {k} (transformers changed?)")
        to = LAYOUTS[layout].get(prefix, prefix)
        out[k] = to + k[len(prefix):]
    return out


def rename_layout(out, layout):
    from safetensors.torch import load_file, save_file
    index_path = os.path.join(out, "model.safetensors.index.json")
    files = sorted({v for v in json.load(open(index_path))["weight_map"].values()}) if os.path.exists(index_path) \
        else ["model.safetensors"]
    weight_map = {}
    for fn in files:
        tensors = load_file(os.path.join(out, fn))
        names = layout_names(tensors.keys(), layout)
        save_file({names[k]: v for k, v in tensors.items()}, os.path.join(out, fn), metadata={"format": "pt"})
        for k in tensors:
            weight_map[names[k]] = fn
    if os.path.exists(index_path):
        index = json.load(open(index_path))
        index["weight_map"] = dict(sorted(weight_map.items()))
        dump_json(index_path, index)


def make_image(case, path, size=None, mode=None, seed=None):
    """A deterministic picture with gradients, edges and noise, saved as PNG (lossless, so both
    sides decode the same bytes) in PIL mode `mode` (RGB, RGBA, L, LA, P)."""
    import numpy as np
    from PIL import Image
    w, h = size or case.image
    mode = mode or case.image_mode
    rng = np.random.default_rng(case.seed if seed is None else seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / max(w, 1) * 6.3 + rng.uniform(0, 3))
    gch = 128 + 100 * np.cos(y / max(h, 1) * 4.1 + rng.uniform(0, 3))
    b = np.where((x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2, 220.0, 40.0)
    img = np.stack([r, gch, b], -1) + rng.normal(0, 25, (h, w, 3))
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
    rgb = Image.fromarray(img, "RGB")
    if mode == "RGBA":
        out = Image.fromarray(np.concatenate([img, alpha[..., None]], -1), "RGBA")
    elif mode == "L":
        out = rgb.convert("L")
    elif mode == "LA":
        out = Image.merge("LA", (rgb.convert("L"), Image.fromarray(alpha, "L")))
    elif mode == "P":
        out = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    elif mode == "RGB":
        out = rgb
    else:
        raise ValueError(f"image mode {mode}")
    out.save(path)


def generate_checkpoint(case, out, spm_model):
    import torch
    os.makedirs(out)
    sp_pieces, image_id, pad_id = write_tokenizer_files(out, spm_model)
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=spm_model)
    byte_ids = [i for i in range(sp.get_piece_size()) if sp.is_byte(i)]
    model = build_model(case, sp_pieces, image_id, pad_id, byte_ids)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[case.dtype]
    info = {"sp_pieces": sp_pieces, "image_id": image_id, "pad_id": pad_id, "eos_step": None}
    if case.force_eos:
        # the </s> row is chosen on the saved precision, so that the reloaded model behaves the same
        model.to(dtype).to(torch.float32)
        # config.json first: without it AutoTokenizer does not know the checkpoint is a llava one and
        # builds a different tokenizer (see README.md)
        model.config.save_pretrained(out)
        proc = make_processor(out, case, write=True)
        inputs = hf_inputs(proc, case, out)
        info["eos_step"] = force_eos(model, case, inputs)
    model.to(dtype)
    model.save_pretrained(out, max_shard_size="100KB" if case.shard else "1GB")
    make_processor(out, case, write=True)
    rename_layout(out, case.layout)
    files = sorted(os.listdir(out))
    if case.shard and "model.safetensors.index.json" not in files:
        raise RuntimeError(f"{case.name}: save_pretrained wrote no index.json: {files}")
    info["files"] = files
    # what both sides must end up computing with: the weights rounded to the checkpoint's dtype
    info["reference_state"] = {k: v.to(torch.float32) for k, v in model.state_dict().items()}
    return info


def make_processor(out, case, write=False):
    """LlavaProcessor over the checkpoint's tokenizer and the Pillow CLIPImageProcessor; with
    write=True it also writes preprocessor_config.json, processor_config.json and chat_template.json
    (as llava-hf/llava-1.5-7b-hf has them)."""
    from transformers import AutoImageProcessor, AutoProcessor
    if write:
        write_processor_files(out, case.image_size, case.patch, case.strategy, case.pinpoints() if case.next else None)
    proc = AutoProcessor.from_pretrained(out, backend="pil")
    # transformers 5's CLIPImageProcessor is the torchvision one; the Pillow pipeline (what LLaVA
    # was trained with, and what DartLens reproduces) is CLIPImageProcessorPil (LLaVA-NeXT:
    # LlavaNextImageProcessorPil).
    want = "LlavaNextImageProcessorPil" if case.next else "CLIPImageProcessorPil"
    if type(proc.image_processor).__name__ != want:
        proc.image_processor = AutoImageProcessor.from_pretrained(out, backend="pil")
    if type(proc.image_processor).__name__ != want:
        raise RuntimeError(f"expected {want}, got {type(proc.image_processor).__name__}")
    return proc


def expand2square(pil_img, background_color):
    """LLaVA-1.5's expand2square (llava/mm_utils.py)."""
    from PIL import Image
    width, height = pil_img.size
    if width == height:
        return pil_img
    if width > height:
        result = Image.new(pil_img.mode, (width, width), background_color)
        result.paste(pil_img, (0, (width - height) // 2))
        return result
    result = Image.new(pil_img.mode, (height, height), background_color)
    result.paste(pil_img, ((height - width) // 2, 0))
    return result


def prompt_text(case):
    if case.template == "llava_v1":
        return f"{VICUNA_V1_SYSTEM} USER: <image>\n{case.question} ASSISTANT:"
    if case.template == "llava-hf":
        return f"USER: <image>\n{case.question} ASSISTANT:"
    if case.template == "mistral":
        return f"[INST] <image>\n{case.question} [/INST]"
    raise ValueError(case.template)


def hf_image(case, image_path, proc):
    from PIL import Image
    img = Image.open(image_path).convert("RGB")
    if case.preprocess == "pad":
        mean = proc.image_processor.image_mean
        img = expand2square(img, tuple(int(x * 255) for x in mean))
    return img


def hf_inputs(proc, case, out):
    image_path = os.path.join(os.path.dirname(out), case.name + ".png")
    if not os.path.exists(image_path):
        make_image(case, image_path)
    return proc(images=hf_image(case, image_path, proc), text=prompt_text(case), return_tensors="pt")


# ---------------------------------------------------------------------------------------------
# running DartLens


def run_cli(cli, args, what):
    t = time.time()
    p = subprocess.run([cli] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise Failure(f"{what}: dartlens-cli {' '.join(args[:1])} exited {p.returncode}: "
                      f"{p.stderr.decode(errors='replace').strip()[-600:]}")
    return p.stdout, time.time() - t


class Failure(Exception):
    pass


def check(cond, msg, errors):
    if not cond:
        errors.append(msg)


def collapse_image_run(ids, image_id):
    out = []
    for i in ids:
        if i == image_id and out and out[-1] == image_id:
            continue
        out.append(i)
    return out


# ---------------------------------------------------------------------------------------------
# pruned runs: DART and FastV computed layer by layer from HF's own modules (../shared/specs)


def python_set_order(values):
    """The iteration order of a CPython set built by inserting `values` in turn: the reference
    iterates such a set, and CPython itself is the oracle here."""
    return list(set(values))


def prune_reference(model, inputs, embeds, image_id, method, budget, layer, n_predict, eos_ids):
    """(kept image indices, (image pivots, text pivots) or None, last prompt logits, greedy tokens)
    of a pruned run as ../shared/specs/dart.md and fastv.md state it, from the HF model's own
    decoder layers, rotary embedding, final norm and lm_head. Layers < K run on the whole sequence;
    the selection reads layer K-1's keys (after RoPE, KV heads repeated) and its output through the
    final norm (DART), or its attention probabilities of the last query (FastV, HF's eager
    attention); layers >= K run on the kept tokens at their original positions. Greedy decoding
    recomputes the whole sequence per token, which equals a KV cache pruned once at prefill.
    embeds: the language model's input embeddings [S, d] (text + image features, HF's own merge)."""
    import torch
    import torch.nn.functional as F
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    lm = model.model.language_model
    layers = list(lm.layers)
    ids = inputs["input_ids"][0]
    img = (ids == image_id).nonzero().flatten()
    s0, n = int(img[0]), int(img.numel())

    def run_layers(h, pos, which, probe=None):
        """h [1, T, d] through the layers `which` at positions pos [T]; probe(i, layer, h_in, pe, attn)."""
        T = h.shape[1]
        pe = lm.rotary_emb(h, pos[None])
        mask = torch.full((T, T), float("-inf")).triu(1)[None, None]
        for i in which:
            seen = {}
            hook = layers[i].self_attn.register_forward_hook(lambda m, a, out: seen.update(w=out[1]))
            h_in = h
            out = layers[i](h, attention_mask=mask, position_ids=pos[None], position_embeddings=pe)
            hook.remove()
            h = out[0] if isinstance(out, tuple) else out
            if probe:
                probe(i, layers[i], h_in, pe, seen.get("w"))
        return h

    def select(sel):
        if method == "fastv":
            score = sel["attn"][0, :, -1, s0:s0 + n].mean(0)                # heads averaged, last query row
            return {"image": sorted(torch.topk(score, budget).indices.tolist()), "pivots": None}
        l1 = sel["keys"].abs().sum(-1)
        img_piv = (torch.topk(l1[s0:s0 + n], 4).indices + s0).tolist()
        txt_piv = (torch.topk(l1[s0 + n:], 4).indices + s0 + n).tolist()
        q = budget // 8
        hn = sel["hn"]
        cand = [c for c in range(s0, s0 + n) if c not in img_piv]
        kept = list(img_piv)
        for p in python_set_order(img_piv + txt_piv):
            sim = F.cosine_similarity(hn[p][None], hn[cand], dim=-1)
            pick = [cand[j] for j in torch.topk(sim, min(q, len(cand)), largest=False).indices.tolist()]
            kept += pick
            cand = [c for c in cand if c not in pick]
        return {"image": sorted(k - s0 for k in kept if s0 <= k < s0 + n), "pivots": (img_piv, txt_piv)}

    keep = None

    def logits_of(tokens):
        """Last-position logits of prompt + tokens, pruned at K with the prefill's selection."""
        nonlocal keep
        h = embeds if not tokens else torch.cat([embeds, lm.embed_tokens(torch.tensor(tokens, dtype=torch.long))], 0)
        h = h[None]
        T = h.shape[1]
        sel = {}

        def probe(i, lay, h_in, pe, w):
            if i != layer - 1:
                return
            a = lay.self_attn
            k = a.k_proj(lay.input_layernorm(h_in)).view(1, T, -1, a.head_dim).transpose(1, 2)
            cos, sin = pe
            _, k = apply_rotary_pos_emb(k, k, cos, sin)
            k = repeat_kv(k, a.num_key_value_groups)                       # [1, H, T, hd]
            sel["keys"] = k[0].transpose(0, 1).reshape(T, -1)              # [T, H*hd]
            sel["attn"] = w                                                # [1, H, T, T] probabilities
        h = run_layers(h, torch.arange(T), range(layer), probe)
        if keep is None:  # the prefill selects
            sel["hn"] = lm.norm(h[0])
            keep = select(sel)
        idx = torch.tensor(sorted(list(range(s0)) + [s0 + i for i in keep["image"]] + list(range(s0 + n, T))))
        h = run_layers(h[:, idx], idx, range(layer, len(layers)))
        return model.lm_head(lm.norm(h))[0, -1]

    with torch.no_grad():
        logits = logits_of([])
        tokens = []
        nxt = int(logits.argmax())
        while len(tokens) < n_predict and nxt not in eos_ids:
            tokens.append(nxt)
            if len(tokens) < n_predict:
                nxt = int(logits_of(tokens).argmax())
    return keep["image"], keep["pivots"], logits.float().numpy(), tokens


def check_pruned(case, cli, out, image_path, model, inputs, image_id, eos_ids, hf_logits, work, errors):
    """Every (method, B, K) of case.prune: DartLens's kept set, pivots, prompt logits and greedy
    tokens against prune_reference, whose unpruned path (FastV keeping all N) must give HF's logits."""
    import numpy as np
    import torch
    figs = []
    n = int((inputs["input_ids"] == image_id).sum())
    with torch.no_grad():  # once per configuration: HF's merged input embeddings [S, d]
        embeds = model(**inputs, output_hidden_states=True).hidden_states[0][0]
    _, _, full, _ = prune_reference(model, inputs, embeds, image_id, "fastv", n, 1, 0, eos_ids)
    rel = float(np.abs(full.astype(np.float64) - hf_logits).max() / np.abs(hf_logits).max())
    check(rel <= 1e-5, f"the layer-by-layer reference, unpruned, is not HF's forward (rel {rel:.3g})", errors)
    for method, budget, layer in case.prune:
        label = f"{method} B={budget} K={layer}"
        kept, pivots, ref_logits, ref_tokens = prune_reference(model, inputs, embeds, image_id, method, budget, layer,
                                                               case.n_predict, eos_ids)
        npy = os.path.join(work, f"{case.name}.{method}{budget}k{layer}.logits.npy")
        stdout, _ = run_cli(cli, ["run", "-m", out, "--image", image_path, "-p", case.question, "-n", str(case.n_predict),
                                  "--template", case.template, "--preprocess", "auto" if case.next else case.preprocess,
                                  "--device", DL_DEVICE, "--dtype", DL_DTYPE, "-t", "2", "--json", "-",
                                  "--method", method, "--keep", str(budget), "--layer", str(layer),
                                  "--dart-scores", "f32", "--dump-logits", npy], f"{case.name} {label}")
        rep = json.loads(stdout)
        run = rep["runs"][0] if "runs" in rep else rep
        pr = run["pruning"]
        fig = {"run": label, "image_tokens": n, "kept": len(kept)}
        check(pr["kept_image_indices"] == kept, f"{label}: kept image tokens differ:\n  DartLens {pr['kept_image_indices']}"
              f"\n  reference {kept}", errors)
        if pivots:
            s0 = rep["image_span"]["start"]
            check(sorted(i + s0 for i in pr["pivot_image_indices"]) == sorted(pivots[0]),
                  f"{label}: image pivots DartLens {pr['pivot_image_indices']} (+{s0}) vs reference {pivots[0]}", errors)
            check(sorted(pr["pivot_text_indices"]) == sorted(pivots[1]),
                  f"{label}: text pivots DartLens {pr['pivot_text_indices']} vs reference {pivots[1]}", errors)
        dl = np.load(npy)
        r = float(np.abs(dl.astype(np.float64) - ref_logits).max() / np.abs(ref_logits).max())
        fig["logit_rel"] = r
        tol = LOGIT_REL_TOL if DL_DTYPE == "f32" else LOGIT_REL_TOL_HALF
        check(r <= tol, f"{label}: prompt logits rel diff {r:.3g} > {tol}", errors)
        check(run["output_ids"] == ref_tokens, f"{label}: greedy tokens differ:\n  DartLens {run['output_ids']}\n"
              f"  reference {ref_tokens}", errors)
        fig["greedy_tokens"] = len(ref_tokens)
        figs.append(fig)
    return figs


def run_case(case, cli, work, spm_model):
    import numpy as np
    import torch
    from transformers import LlavaForConditionalGeneration, LlavaNextForConditionalGeneration

    t0 = time.time()
    out = os.path.join(work, case.name)
    image_path = os.path.join(work, case.name + ".png")
    for p in (out, image_path):
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)
    make_image(case, image_path)
    info = generate_checkpoint(case, out, spm_model)
    t_gen = time.time() - t0
    errors = []
    fig = {"case": case.name, "covers": case.covers}

    # --- Hugging Face side: the saved files, loaded as a user would (f32 compute)
    proc = make_processor(out, case)
    tok = proc.tokenizer
    image_id = info["image_id"]
    text = prompt_text(case)
    if case.template == "llava-hf":
        conv = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": case.question}]}]
        rendered = proc.apply_chat_template(conv, add_generation_prompt=True)
        check(rendered == text, f"llava-hf chat template renders {rendered!r}, expected {text!r}", errors)
    ids_whole = tok(text).input_ids
    chunks = text.split("<image>")
    ids_chunks = tok(chunks[0]).input_ids + [image_id] + tok(chunks[1], add_special_tokens=False).input_ids
    # llava_v1 is the original LLaVA's tokenizer_image_token (chunks tokenised separately);
    # llava-hf is the processor's tokenisation of the whole string. The Hub tokenizer gives both.
    hf_prompt = ids_chunks if case.template == "llava_v1" else ids_whole
    fig["hf_whole_equals_chunks"] = ids_whole == ids_chunks
    inputs = proc(images=hf_image(case, image_path, proc), text=text, return_tensors="pt")
    proc_ids = inputs["input_ids"][0].tolist()
    n_image = int((inputs["input_ids"] == image_id).sum())

    model_class = LlavaNextForConditionalGeneration if case.next else LlavaForConditionalGeneration
    model, loading = model_class.from_pretrained(out, dtype=torch.float32, attn_implementation="eager",
                                                 output_loading_info=True)
    model.eval()
    # HF must have read every weight from the files (not left some at their random init)
    problems = {k: v for k, v in loading.items() if v}
    if problems:
        raise Failure(f"{case.name}: transformers did not load the checkpoint cleanly: {problems}")
    loaded = model.state_dict()
    ref = info["reference_state"]
    bad = [k for k in ref if k not in loaded or not torch.equal(loaded[k], ref[k])]
    if bad:
        raise Failure(f"{case.name}: transformers loaded different weights for {bad[:5]} ({len(bad)} tensors)")
    with torch.no_grad():
        hf_logits = model(**inputs).logits[0, -1].float().numpy()
        gen = model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=case.n_predict, min_new_tokens=0,
                             output_scores=True, return_dict_in_generate=True)
    new = gen.sequences[0, inputs["input_ids"].shape[1]:].tolist()
    eos_ids = model.generation_config.eos_token_id
    eos_ids = set(eos_ids if isinstance(eos_ids, list) else [eos_ids])
    hf_eos = bool(new) and new[-1] in eos_ids
    hf_tokens = new[:-1] if hf_eos else new
    margins = []
    for s in gen.scores:
        top = torch.topk(s[0].float(), 2).values
        margins.append(float(top[0] - top[1]))
    hf_text = tok.decode(hf_tokens, skip_special_tokens=True)
    fig["hf_tokenizer_class"] = type(tok).__name__

    # --- DartLens
    logits_npy = os.path.join(work, case.name + ".logits.npy")
    pixels_npy = os.path.join(work, case.name + ".pixels.npy")
    stdout, t_cli = run_cli(cli, ["run", "-m", out, "--image", image_path, "-p", case.question, "-n",
                                  str(case.n_predict), "--template", case.template, "--preprocess", "auto" if case.next else case.preprocess,
                                  "--device", DL_DEVICE, "--dtype", DL_DTYPE, "-t", "2", "--json", "-",
                                  "--dump-logits", logits_npy, "--dump-pixels", pixels_npy], case.name)
    rep = json.loads(stdout)
    run = rep["runs"][0] if "runs" in rep else rep
    dl_prompt = rep["prompt_ids"]
    dl_out = run["output_ids"]
    dl_logits = np.load(logits_npy)
    dl_pixels = np.load(pixels_npy)

    # prompt ids
    check(rep.get("prompt_text") == text, f"prompt text: DartLens {rep.get('prompt_text')!r} vs {text!r}", errors)
    check(dl_prompt == hf_prompt, f"prompt ids differ:\n  DartLens {dl_prompt}\n  HF       {hf_prompt}", errors)
    check(collapse_image_run(proc_ids, image_id) == ids_whole,
          "HF processor ids (image run collapsed) differ from the tokenizer's", errors)
    span = rep["image_span"]
    check(span["length"] == n_image, f"image span length {span['length']} vs HF processor's {n_image} image tokens",
          errors)
    check(span["start"] == proc_ids.index(image_id), f"image span start {span['start']} vs HF {proc_ids.index(image_id)}",
          errors)
    fig["prompt_len"] = len(hf_prompt)
    fig["n_image_tokens"] = n_image

    # pixels (NeXT: HF's [1, 1 + tiles, 3, S, S], DartLens's [1 + tiles, 3, S, S])
    hf_pixels = inputs["pixel_values"].float().numpy()
    if case.next:
        hf_pixels = hf_pixels[0]
    if dl_pixels.shape != hf_pixels.shape:
        errors.append(f"pixel shape DartLens {dl_pixels.shape} vs HF {hf_pixels.shape}")
    else:
        pix = float(np.abs(dl_pixels.astype(np.float64) - hf_pixels).max())
        fig["pixel_max_abs"] = pix
        fig["pixel_shape"] = list(hf_pixels.shape)
        check(pix <= PIXEL_ABS_TOL, f"pixel values: max |diff| {pix:.3g} > {PIXEL_ABS_TOL}", errors)

    # logits
    if dl_logits.shape != hf_logits.shape:
        errors.append(f"logits shape DartLens {dl_logits.shape} vs HF {hf_logits.shape}")
    else:
        rel = float(np.abs(dl_logits.astype(np.float64) - hf_logits).max() / np.abs(hf_logits).max())
        fig["logit_rel"] = rel
        fig["logit_max_abs_hf"] = float(np.abs(hf_logits).max())
        tol = LOGIT_REL_TOL if DL_DTYPE == "f32" else LOGIT_REL_TOL_HALF
        check(rel <= tol, f"last-position logits ({DL_DEVICE} {DL_DTYPE}): rel diff {rel:.3g} > {tol}", errors)
        check(int(dl_logits.argmax()) == int(hf_logits.argmax()), "last-position argmax differs", errors)

    # greedy tokens
    fig["hf_new_tokens"] = new
    fig["hf_stopped_at_eos"] = hf_eos
    fig["min_top2_margin"] = min(margins) if margins else None
    dl_eos = len(dl_out) < case.n_predict
    check(dl_out == hf_tokens,
          f"greedy tokens differ (HF eos={hf_eos}, min top-2 margin {fig['min_top2_margin']}):\n"
          f"  DartLens {dl_out}\n  HF       {new}", errors)
    check(dl_eos == hf_eos, f"stopped at eos: DartLens {dl_eos}, HF {hf_eos}", errors)
    if case.force_eos:
        check(hf_eos, "the eos case did not stop at </s> on the HF side (generation changed?)", errors)
        fig["eos_step"] = info["eos_step"]
    check(run.get("text") == hf_text,
          f"decoded answer: DartLens {run.get('text')!r} vs HF {hf_text!r}", errors)
    if case.prune and DL_DTYPE == "f32":  # half compute may rank near-ties differently: f32 only
        fig["pruned"] = check_pruned(case, cli, out, image_path, model, inputs, image_id, eos_ids, hf_logits, work,
                                     errors)
    # more pictures through the same checkpoint: preprocessing only
    extra = []
    for k, (w, h, mode) in enumerate(case.extra_images):
        path = os.path.join(work, f"{case.name}.extra{k}.png")
        make_image(case, path, (w, h), mode, seed=case.seed * 100 + k)
        npy = os.path.join(work, f"{case.name}.extra{k}.pixels.npy")
        run_cli(cli, ["run", "-m", out, "--image", path, "-p", case.question, "-n", "1", "--template", case.template,
                      "--preprocess", "auto" if case.next else case.preprocess, "--device", DL_DEVICE, "--dtype", DL_DTYPE, "-t", "2",
                      "--dump-pixels", npy], f"{case.name} extra image {w}x{h} {mode}")
        ref = proc.image_processor(hf_image(case, path, proc), return_tensors="np")["pixel_values"]
        if case.next:
            ref = ref[0]
        got = np.load(npy)
        if got.shape != ref.shape:
            errors.append(f"pixels of {w}x{h} {mode}: shape DartLens {got.shape} vs HF {ref.shape}")
            continue
        d = float(np.abs(got.astype(np.float64) - ref).max())
        extra.append({"image": f"{w}x{h} {mode}", "pixel_max_abs": d})
        check(d <= PIXEL_ABS_TOL, f"pixels of {w}x{h} {mode}: max |diff| {d:.3g} > {PIXEL_ABS_TOL}", errors)
    if extra:
        fig["extra_images"] = extra
        fig["pixel_max_abs"] = max([fig.get("pixel_max_abs", 0.0)] + [e["pixel_max_abs"] for e in extra])
    fig["seconds"] = {"generate": round(t_gen, 2), "cli": round(t_cli, 2), "total": round(time.time() - t0, 2)}
    fig["errors"] = errors
    return fig


# ---------------------------------------------------------------------------------------------
# tokenizer corpus


SPECIAL_LITERAL = "special-token literal"


# ---------------------------------------------------------------------------------------------
# a trained checkpoint (resources/models/dartlens-shapes): greedy answers, HF vs DartLens


MODEL_QUESTIONS = ["What objects are in this picture?", "Is there a car in the image?",
                   "Is there a dog in the image?", "How many trees are there?", "What color is the sun?"]


def run_model(cli, work, model_dir, n_scenes=4, n_predict=48):
    """Greedy answers of a trained llava-hf checkpoint on held-out scenes (dartlens-cli scenes, set
    seed 777, 336x336), both prompt templates: HF's LlavaProcessor + generate(do_sample=False) vs
    dartlens-cli run; generated ids and decoded text must be identical."""
    import torch
    from transformers import LlavaForConditionalGeneration
    t0 = time.time()
    errors = []
    scenes = os.path.join(work, "model-scenes")
    if not os.path.exists(os.path.join(scenes, "scenes.jsonl")):
        run_cli(cli, ["scenes", "--count", str(n_scenes), "--seed", "777", "--out", scenes, "--size", "336x336",
                      "--overwrite"], "scenes")
    model = LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    case = Case("trained", 0, "trained checkpoint", image_size=model.config.vision_config.image_size,
                patch=model.config.vision_config.patch_size, strategy=model.config.vision_feature_select_strategy)
    proc = make_processor(model_dir, case)
    eos = model.generation_config.eos_token_id
    n = agree = 0
    samples = []
    for i in range(n_scenes):
        image_path = os.path.join(scenes, f"scene_{i:06d}.png")
        for qi, question in enumerate(MODEL_QUESTIONS):
            template = ["llava_v1", "llava-hf"][(i + qi) % 2]
            text = dataclasses.replace(case, template=template, question=question)
            inputs = proc(images=hf_image(text, image_path, proc), text=prompt_text(text), return_tensors="pt")
            n0 = inputs["input_ids"].shape[1]
            with torch.no_grad():
                hf_new = model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=n_predict)[0, n0:].tolist()
            if eos in hf_new:
                hf_new = hf_new[:hf_new.index(eos) + 1]
            hf_text = proc.tokenizer.decode([t for t in hf_new if t != eos], skip_special_tokens=True)
            stdout, _ = run_cli(cli, ["run", "-m", model_dir, "--image", image_path, "-p", question, "-n",
                                      str(n_predict), "--template", template, "--device", DL_DEVICE, "--dtype",
                                      DL_DTYPE, "-t", "2", "--json", "-"], f"scene {i} '{question}'")
            run = json.loads(stdout)["runs"][0]
            dl_new = run["output_ids"]
            n += 1
            # HF's generate() returns the </s> it stopped at; DartLens's output_ids end before it.
            hf_cmp = hf_new[:-1] if hf_new and hf_new[-1] == eos else hf_new
            same = dl_new == hf_cmp and run["text"].strip() == hf_text.strip()
            agree += same
            samples.append({"scene": i, "question": question, "template": template, "hf": hf_text, "dartlens": run["text"]})
            check(same, f"scene {i} ({template}) '{question}': HF {hf_new} '{hf_text}' vs DartLens {dl_new} "
                  f"'{run['text']}'", errors)
    return {"case": "model", "errors": errors, "n": n, "agree": agree, "samples": samples,
            "seconds": round(time.time() - t0, 1)}


def tokenizer_corpus():
    """(category, text) pairs. Each text is encoded by DartLens and by HF's tokenizer."""
    c = []
    add = lambda cat, *texts: c.extend((cat, t) for t in texts)
    add("plain", "Hello world", "What is shown in this picture?", "The red cat sits on the table.",
        "A chat between a curious human and an artificial intelligence assistant.", "USER: hi ASSISTANT:",
        "unbelievable antidisestablishmentarianism", "CamelCaseWordsAndALLCAPS", "don't won't it's",
        "e-mail: someone@example.com, https://example.org/path?q=1&x=2")
    add("leading/trailing space", " Hello", "  Hello", "   three", "Hello ", "Hello  ", " ", "  ", "     ",
        " What is shown?", "\tTabbed", " \n leading space then newline")
    add("whitespace runs", "a  b", "a   b    c", "word\t\tword", "tabs\tand spaces  mixed \t here",
        "a" + " " * 17 + "b", "line one\n\nline three", "\n", "\n\n", "\r\n", "ends with newline\n",
        "\nstarts with newline", "a\nb\nc", "x \n y", "mixed \r\n endings \r")
    # Newlines as prompts hold them (the llava-hf template puts "\n" after <image>), runs of them,
    # and next to tabs, CR, emoji and CJK: a newline is no piece of a vocabulary trained on lines,
    # so each is byte fallback <0x0A>.
    add("newlines", "line one\nline two", "USER: \nWhat is in the image? ASSISTANT:", "\nWhat colour is the ball?",
        "a\n\n\nb", "tabs\tand\nnewlines\r\nand CR", "emoji 😀\n日本語\n")
    add("digits", "0", "42", "12345", "3.14159", "2024-01-01", "1,000,000", "v1.5", "x=-17e-3",
        "phone 555 0199", "0007", "99 bottles", "½ ¾ ²³ ①②")
    add("punctuation", "Hello, world!", "(a) [b] {c}", "\"quoted\" 'single'", "a/b\\c|d", "#!@$%^&*",
        "...", "--", "<tag>text</tag>", "< s >", "<im age>", "end.",
        "punctuation: !@#$%^&*()_+-=[]{};':\",./<>?`~", "Ω≈ç√∫˜µ≤≥÷ ¡™£¢∞§¶•ªº")
    add("latin unicode", "café naïve résumé", "Ünïcödé ñ ç ß", "e\u0301 (combining acute)", "Œuvre façade",
        "İstanbul ğ ş", "ÅÄÖ åäö")
    add("CJK", "中文的句子和图片。", "猫在桌子上。", "你好，世界！", "日本語のテキスト。", "カタカナ ひらがな",
        "한국어 문장", "漢字と English mixed 混合", "龘靐齉")
    add("other scripts", "Привет, как дела?", "Ελληνικά γράμματα", "עברית", "مرحبا بالعالم", "हिन्दी",
        "ไทย", "ქართული")
    add("emoji", "😀", "I ❤️ cats 🐱🐶", "👍🏽", "👨‍👩‍👧‍👦 family", "🇫🇷🇯🇵", "⭐️✨🌟", "a😀b😀c",
        "emoji: 😀 🐈‍⬛ 👍🏽 🇫🇷", "mixed😀text日本abc123")
    add("byte fallback", "\u0000nul", "\u0007bell", "\u00ad soft hyphen", "\ufeffBOM", "\u200bzero width",
        "\U0001F9EC dna", "\U00010348 gothic", "\uffff", "\u2028line sep", "tab\u000bvt")
    add("sentencepiece marker", "\u2581", "a\u2581b", "\u2581leading marker", "two\u2581\u2581markers")
    # Known divergence (asserted to stay one, see README.md): HF's tokenizer turns the text of a
    # special/added token into its id; DartLens encodes user text as plain text (prompt.h: an "<image>"
    # typed into the question is not a second image).
    add(SPECIAL_LITERAL, "<s> is not special here?", "a </s> b", "<unk>", "<image> typed by the user", "x<pad>y")
    add("long", "The quick brown fox jumps over the lazy dog. " * 6,
        "中文和English混合的一段比较长的文字，包括数字123和符号！" * 3)
    return c


def run_tokenizer(cli, work, spm_model):
    import sentencepiece as spm
    from transformers import AutoTokenizer, LlamaTokenizer

    t0 = time.time()
    out = os.path.join(work, "tokenizer-ckpt")
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    write_tokenizer_files(out, spm_model)
    # AutoTokenizer needs config.json to know it is a llava checkpoint (transformers 5 then uses the
    # tokenizer.json as it is, as for the real llava-hf checkpoints).
    dump_json(os.path.join(out, "config.json"), {"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"]})
    corpus = tokenizer_corpus()
    jsonl = os.path.join(work, "tokenizer-corpus.jsonl")
    with open(jsonl, "w", encoding="utf-8") as f:
        for _, text in corpus:
            f.write(json.dumps(text, ensure_ascii=True) + "\n")
    stdout, _ = run_cli(cli, ["tokenize", "-m", out, "--file", jsonl, "--jsonl"], "tokenize")
    dl = [json.loads(line)["ids"] for line in stdout.decode().splitlines() if line.strip()]
    if len(dl) != len(corpus):
        raise Failure(f"tokenize printed {len(dl)} lines for {len(corpus)} texts")

    hub = AutoTokenizer.from_pretrained(out)
    # transformers 5's own LlamaTokenizer built from tokenizer.model alone (no tokenizer.json),
    # with the checkpoint's legacy=false: informative only (see README.md).
    bare = os.path.join(work, "tokenizer-bare")
    if os.path.isdir(bare):
        shutil.rmtree(bare)
    os.makedirs(bare)
    for fn in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        shutil.copyfile(os.path.join(out, fn), os.path.join(bare, fn))
    native = LlamaTokenizer.from_pretrained(bare)
    sp = spm.SentencePieceProcessor(model_file=spm_model)

    errors = []
    agree = {"hub": 0, "native_legacy_false": 0, "sentencepiece_py": 0}
    disagreements = {"hub": [], "native_legacy_false": [], "sentencepiece_py": []}
    for (cat, text), dl_ids in zip(corpus, dl):
        refs = {"hub": hub(text).input_ids, "native_legacy_false": native(text).input_ids,
                "sentencepiece_py": [1] + sp.encode(text)}
        for k, ref in refs.items():
            if ref == dl_ids:
                agree[k] += 1
            else:
                disagreements[k].append({"category": cat, "text": text, "dartlens": dl_ids, k: ref})
    for d in disagreements["hub"]:
        if d["category"] != SPECIAL_LITERAL:
            errors.append(f"tokenizer [{d['category']}] {d['text']!r}:\n  DartLens {d['dartlens']}\n  HF       {d['hub']}")
    n_special = sum(1 for cat, _ in corpus if cat == SPECIAL_LITERAL)
    n_special_diff = sum(1 for d in disagreements["hub"] if d["category"] == SPECIAL_LITERAL)
    if n_special_diff != n_special:
        errors.append(f"{n_special - n_special_diff} of the {n_special} '{SPECIAL_LITERAL}' texts now agree with HF: "
                      f"DartLens changed how it encodes special-token text; update the test and README.md")
    return {"case": "tokenizer", "corpus_size": len(corpus), "agree": agree, "special_literal": n_special, "hub_class": type(hub).__name__,
            "native_class": type(native).__name__, "disagreements": disagreements,
            "seconds": round(time.time() - t0, 2), "errors": errors}


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", help="path of dartlens-cli")
    ap.add_argument("--work", help="scratch directory (created; reused between runs)")
    ap.add_argument("what", choices=["list", "names", "tokenizer", "llava", "model"])
    ap.add_argument("cases", nargs="*", help="configuration or group names for 'llava' (default: all); "
                    "for 'model' the checkpoint directory")
    a = ap.parse_args()
    if a.what == "list":
        for c in CASES:
            print(f"{c.name:30s} [{c.group}] {c.covers}")
        return 0
    if a.what == "names":  # for tests/hf/CMakeLists.txt (needs no torch)
        print(";".join(GROUPS))
        return 0
    if not a.cli or not a.work:
        ap.error("--cli and --work are required")
    if not os.access(a.cli, os.X_OK):
        print(f"error: {a.cli}: dartlens-cli not found or not executable", file=sys.stderr)
        return 2
    if a.what == "model":
        if len(a.cases) != 1 or not os.path.isfile(os.path.join(a.cases[0], "config.json")):
            ap.error("'model' takes one llava-hf checkpoint directory")
        import_stack()
        os.makedirs(a.work, exist_ok=True)
        r = run_model(a.cli, a.work, a.cases[0])
        for smp in r["samples"]:
            print(f"  scene {smp['scene']} [{smp['template']}] {smp['question']} -> HF '{smp['hf']}' | DartLens '{smp['dartlens']}'")
        print(f"[{'FAIL' if r['errors'] else 'ok'}] model {a.cases[0]}: greedy answers identical on {r['agree']}/{r['n']} "
              f"({r['seconds']} s)")
        for e in r["errors"]:
            print("    " + e)
        dump_json(os.path.join(a.work, "summary-model.json"), r)
        return 1 if r["errors"] else 0
    unknown = [n for n in a.cases if n not in CASE_BY_NAME and n not in GROUPS]
    if unknown:
        ap.error(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(CASE_BY_NAME)}; "
                 f"groups: {', '.join(GROUPS)}")
    if a.what == "tokenizer" and a.cases:
        ap.error("'tokenizer' takes no configuration names")
    import_stack()
    import torch
    import transformers
    print(f"hf oracle: python {sys.version.split()[0]}, torch {torch.__version__}, transformers "
          f"{transformers.__version__}, threads {torch.get_num_threads()}")
    os.makedirs(a.work, exist_ok=True)
    spm_model = train_spm(os.path.join(a.work, "spm"))
    results = []
    failed = False
    todo = ["tokenizer"] if a.what == "tokenizer" else \
        [c.name for c in CASES if not a.cases or c.name in a.cases or c.group in a.cases]
    for name in todo:
        try:
            r = run_tokenizer(a.cli, a.work, spm_model) if name == "tokenizer" else \
                run_case(CASE_BY_NAME[name], a.cli, a.work, spm_model)
        except Failure as e:
            r = {"case": name, "errors": [str(e)]}
        results.append(r)
        status = "FAIL" if r["errors"] else "ok"
        failed |= bool(r["errors"])
        if name == "tokenizer" and "agree" in r:
            n = r["corpus_size"]
            print(f"[{status}] tokenizer: {n} texts ({r['special_literal']} special-token literals, which must differ); DartLens == HF Hub tokenizer ({r['hub_class']}) on "
                  f"{r['agree']['hub']}/{n}; == transformers' LlamaTokenizer(legacy=False, from tokenizer.model) "
                  f"on {r['agree']['native_legacy_false']}/{n}; == sentencepiece on {r['agree']['sentencepiece_py']}/{n}"
                  f" ({r['seconds']} s)")
        elif "logit_rel" in r:
            print(f"[{status}] {name}: prompt {r['prompt_len']} ids, {r['n_image_tokens']} image tokens, pixels "
                  f"{r.get('pixel_shape')}{' +%d more' % len(r['extra_images']) if r.get('extra_images') else ''} "
                  f"max|diff| {r.get('pixel_max_abs')}, logits rel {r['logit_rel']:.2e}, "
                  f"greedy {len(r['hf_new_tokens'])} tokens{' (eos)' if r['hf_stopped_at_eos'] else ''}, "
                  f"min top-2 margin {r['min_top2_margin']:.3g} ({r['seconds']['total']} s)")
            for pf in r.get("pruned", []):
                print(f"    pruned {pf['run']}: kept {pf['kept']}/{pf['image_tokens']} as the reference, logits rel "
                      f"{pf['logit_rel']:.2e}, greedy {pf['greedy_tokens']} tokens")
        else:
            print(f"[{status}] {name}")
        for e in r["errors"]:
            print("    " + e.replace("\n", "\n    "))
        sys.stdout.flush()
    summary = os.path.join(a.work, f"summary-{a.what}{'-' + '-'.join(a.cases) if a.cases and len(a.cases) < 3 else ''}.json")
    dump_json(summary, results)
    print(f"details: {summary}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
