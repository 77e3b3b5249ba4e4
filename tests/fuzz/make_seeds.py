#!/usr/bin/env python3
"""Writes the seed corpora in tests/data/fuzz/fuzz_*/seed-* (committed; rerun only to change them).

Small valid files of every kind each fuzz target reads, so that the fuzzer starts from inputs that
reach deep into the parser. Some are copies of the reference data in tests/data/hf-llava-tiny; the
rest are made here. Needs numpy and Pillow (the venv of scripts/venv.sh) and Debian's spm_train.
Inputs found by the fuzzers to crash are kept next to the seeds as regress-* files; this script
leaves those alone.
"""
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "fuzz")
REF = os.path.join(ROOT, "tests", "data", "hf-llava-tiny")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)] in data order."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def seeds_safetensors():
    f32 = np.arange(4, dtype="<f4").tobytes()
    put("fuzz_safetensors", "seed-f32-i64-metadata.safetensors", safetensors(
        [("w", "F32", [2, 2], f32), ("ids", "I64", [3], np.array([1, 2, 3], "<i8").tobytes())],
        {"format": "pt"}))
    put("fuzz_safetensors", "seed-all-dtypes.safetensors", safetensors([
        ("f64", "F64", [1], np.ones(1, "<f8").tobytes()), ("f16", "F16", [2], np.ones(2, "<f2").tobytes()),
        ("bf16", "BF16", [2], b"\x80\x3f\x00\x40"), ("i32", "I32", [1], b"\x07\x00\x00\x00"),
        ("i16", "I16", [1], b"\xff\xff"), ("u16", "U16", [1], b"\x01\x00"), ("i8", "I8", [2], b"\x80\x7f"),
        ("u8", "U8", [2], b"\x00\xff"), ("bool", "BOOL", [2], b"\x00\x01"), ("empty", "F32", [0, 3], b""),
        ("scalar", "F32", [], np.ones(1, "<f4").tobytes())]))
    # Odd offset: a misaligned F32 (the reader copies instead of viewing).
    put("fuzz_safetensors", "seed-misaligned.safetensors", safetensors(
        [("b", "U8", [1], b"\x05"), ("f", "F32", [1, 1], np.ones(1, "<f4").tobytes())]))


def seeds_index():
    shard1, shard2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    put("fuzz_safetensors_index", "seed-two-shards.json", json.dumps({
        "metadata": {"total_size": 36},
        "weight_map": {"a.bias": shard1, "a.weight": shard1, "b.empty": shard2, "b.weight": shard2}}, indent=2))
    put("fuzz_safetensors_index", "seed-one-shard.json", json.dumps({"weight_map": {"b.weight": shard2}}))


def seeds_npy():
    for name in ("attention_mask", "generated_new_tokens"):
        shutil.copy(os.path.join(REF, "npy", name + ".npy"), os.path.join(OUT, "fuzz_npy", "seed-" + name + ".npy"))
    arrays = {
        "f4-3d": np.arange(6, dtype="<f4").reshape(1, 2, 3), "f2": np.ones(3, "<f2"), "f8-0d": np.array(2.5),
        "i4": np.array([[1, -2]], "<i4"), "i2": np.array([3], "<i2"), "i1": np.array([-1, 1], "i1"),
        "u1": np.array([0, 255], "u1"), "b1": np.array([True, False]), "empty": np.zeros((0, 4), "<f4"),
    }
    for name, a in arrays.items():
        buf = io.BytesIO()
        np.save(buf, a)
        put("fuzz_npy", "seed-" + name + ".npy", buf.getvalue())
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.arange(3, dtype="<i8"), version=(2, 0))
    put("fuzz_npy", "seed-v2-i8.npy", buf.getvalue())


def seeds_config():
    for name in ("config.json", "config_full.json"):
        shutil.copy(os.path.join(REF, name), os.path.join(OUT, "fuzz_config", "seed-" + name))
    put("fuzz_config", "seed-newer-keys.json", json.dumps({
        "model_type": "llava", "image_token_id": 32000, "vision_feature_layer": [-2],
        "vision_feature_select_strategy": "full", "tie_word_embeddings": True, "dartlens_random_weights": True,
        "vision_config": {"model_type": "clip_vision_model", "hidden_size": 64, "num_attention_heads": 4,
                          "image_size": 56, "patch_size": 14, "num_hidden_layers": 2},
        "text_config": {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4,
                        "num_key_value_heads": 2, "head_dim": 16, "eos_token_id": [2, 7], "pad_token_id": None,
                        "rope_scaling": {"rope_type": "default"},
                        "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}}}))


def seeds_preprocessor():
    mean, std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
    put("fuzz_preprocessor_config", "seed-llava-hf.json", json.dumps({
        "crop_size": {"height": 336, "width": 336}, "do_center_crop": True, "do_convert_rgb": True,
        "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": mean,
        "image_processor_type": "CLIPImageProcessor", "image_std": std, "processor_class": "LlavaProcessor",
        "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 336}}, indent=2))
    put("fuzz_preprocessor_config", "seed-old-style-pad.json", json.dumps({
        "size": 224, "crop_size": 224, "image_aspect_ratio": "pad", "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5], "do_normalize": False}))
    put("fuzz_preprocessor_config", "seed-height-width.json", json.dumps({
        "size": {"height": 56, "width": 56}, "crop_size": {"height": 56, "width": 48},
        "dartlens_preprocess": "crop", "do_center_crop": False}))


def seeds_tokenizer():
    model_dir = os.path.join(OUT, "fuzz_tokenizer_model")
    os.makedirs(model_dir, exist_ok=True)
    words = ("the red ball a small dog two cats blue car tall tree is next to sits on behind under above "
             "looks at image caf\u00e9 \u65e5\u672c").split()
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "corpus.txt"), "w") as f:
            for _ in range(400):
                f.write(" ".join(words[i] for i in rng.integers(0, len(words), 8)) + "\n")
        for name, opts in (("bpe300-byte-fallback", "--model_type=bpe --vocab_size=300 --byte_fallback=true"),
                           ("unigram120", "--model_type=unigram --vocab_size=120")):
            subprocess.run(f"spm_train --input=corpus.txt --model_prefix=m {opts} --hard_vocab_limit=false "
                           "--normalization_rule_name=identity --add_dummy_prefix=true --character_coverage=1.0 "
                           "--num_threads=1 --minloglevel=2", shell=True, cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.copy(os.path.join(tmp, "m.model"), os.path.join(model_dir, "seed-" + name + ".model"))
    # fuzz_tokenizer: added_tokens.json \0 tokenizer_config.json \0 special_tokens_map.json, next to
    # seed-unigram120.model. Added ids follow its n pieces without gaps (n, n+1, ...), as
    # core/io/tokenizer.cpp requires, so that the seeds load.
    vocab = subprocess.run(["spm_export_vocab", "--model=" + os.path.join(model_dir, "seed-unigram120.model")],
                           check=True, capture_output=True, text=True).stdout
    n = len(vocab.splitlines())
    added = json.dumps({"<image>": n, "<pad>": n + 1})
    config = json.dumps({
        "add_bos_token": True, "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
        "added_tokens_decoder": {
            "0": {"content": "<unk>", "special": True}, "1": {"content": "<s>", "special": True},
            str(n): {"content": "<image>", "lstrip": False, "normalized": False, "special": True},
            str(n + 1): {"content": "<pad>", "special": True}, str(n + 2): {"content": "<extra>", "special": False}}})
    specials = json.dumps({"bos_token": {"content": "<s>", "lstrip": False}, "eos_token": "</s>",
                           "pad_token": "<pad>", "unk_token": "<unk>", "additional_special_tokens": ["<image>"]})
    put("fuzz_tokenizer", "seed-llava-hf", added + "\0" + config + "\0" + specials)
    put("fuzz_tokenizer", "seed-added-only", added)
    put("fuzz_tokenizer", "seed-config-only", "\0" + config)


def seeds_image():
    def save(name, img, fmt, **kw):
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        put("fuzz_image", "seed-" + name, buf.getvalue())

    rgb = Image.fromarray(np.arange(5 * 4 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4, "RGB")
    save("rgb.png", rgb, "PNG")
    save("gray.png", rgb.convert("L"), "PNG")
    save("gray16.png", Image.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000), "PNG")
    save("rgba.png", rgb.convert("RGBA"), "PNG")
    save("la.png", rgb.convert("LA"), "PNG")
    save("palette.png", rgb.convert("P"), "PNG")
    save("rgb.jpg", rgb, "JPEG", quality=80)
    save("progressive.jpg", rgb, "JPEG", progressive=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    save("exif-rotated.jpg", rgb, "JPEG", exif=exif.tobytes())
    save("rgb.bmp", rgb, "BMP")
    save("rgb.ppm", rgb, "PPM")
    save("gray.pgm", rgb.convert("L"), "PPM")
    save("rgb.tif", rgb, "TIFF")
    save("rgb.webp", rgb, "WEBP", lossless=True)
    # 16-bit PGM (maxval 65535), which Pillow does not write.
    put("fuzz_image", "seed-gray16.pgm", b"P5\n3 2\n65535\n" + np.arange(6, dtype=">u2").tobytes())


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(os.path.join(OUT, "fuzz_npy"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "fuzz_config"), exist_ok=True)
    seeds_safetensors()
    seeds_index()
    seeds_npy()
    seeds_config()
    seeds_preprocessor()
    seeds_tokenizer()
    seeds_image()
    return 0


if __name__ == "__main__":
    sys.exit(main())
