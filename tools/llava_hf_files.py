"""The files of a llava-hf checkpoint besides the weights, as llava-hf/llava-1.5-7b-hf has them:
the tokenizer files for a SentencePiece model (tokenizer.model, tokenizer.json, tokenizer_config.json,
special_tokens_map.json, added_tokens.json) and the processor files (preprocessor_config.json,
processor_config.json, chat_template.json). Shared by tests/hf/hf_oracle.py (random checkpoints) and
tools/shapes (the trained demo model)."""
import json
import os
import shutil

LLAVA_HF_CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['role'] != 'system' -%}{{ m['role'] | upper }}: {% endif -%}"
    "{%- for c in m['content'] if c['type'] == 'image' -%}<image>\n{% endfor -%}"
    "{%- for c in m['content'] if c['type'] == 'text' -%}{{ c['text'] }} {% endfor -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}ASSISTANT:{%- endif -%}")



def write_tokenizer_files(out, spm_model):
    """tokenizer.model + the tokenizer files of llava-hf/llava-1.5-7b-hf, with this vocabulary's ids:
    tokenizer.json as the Hub has it (BPE, byte fallback, normalizer Prepend("▁") + Replace(" ", "▁"),
    no pre-tokenizer, "<s> $A" post-processor), tokenizer_config.json (LlamaTokenizer, legacy false,
    add_bos_token true, <image> and <pad> added special tokens), special_tokens_map.json and
    added_tokens.json. Returns (sp_pieces, image_id, pad_id)."""
    import sentencepiece as spm
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
    from transformers.convert_slow_tokenizer import SentencePieceExtractor

    shutil.copyfile(spm_model, os.path.join(out, "tokenizer.model"))
    sp = spm.SentencePieceProcessor(model_file=spm_model)
    n = sp.get_piece_size()
    image_id, pad_id = n, n + 1
    ext = SentencePieceExtractor(spm_model).extract(models.BPE)  # HF's own vocab/merges extraction
    vocab, merges = ext["vocab"], ext["merges"]
    if len(vocab) != n:
        raise RuntimeError(f"extracted vocab has {len(vocab)} entries, SentencePiece {n}")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True,
                               dropout=None))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1",
                                                       special_tokens=[("<s>", 1)])
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")])
    tok.add_special_tokens([AddedToken("<image>", normalized=False, special=True),
                            AddedToken("<pad>", normalized=False, special=True)])
    if tok.token_to_id("<image>") != image_id or tok.token_to_id("<pad>") != pad_id:
        raise RuntimeError("added token ids are not sp_pieces, sp_pieces + 1")
    tok.save(os.path.join(out, "tokenizer.json"))

    def entry(content):
        return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                "special": True}
    cfg = {
        "add_bos_token": True, "add_eos_token": False, "add_prefix_space": None,
        "added_tokens_decoder": {"0": entry("<unk>"), "1": entry("<s>"), "2": entry("</s>"),
                                 str(image_id): entry("<image>"), str(pad_id): entry("<pad>")},
        "bos_token": "<s>", "clean_up_tokenization_spaces": False, "eos_token": "</s>",
        "extra_special_tokens": {"image_token": "<image>"}, "image_token": "<image>", "legacy": False,
        "model_max_length": 1000000000000000019884624838656, "pad_token": "<pad>", "padding_side": "left",
        "processor_class": "LlavaProcessor", "sp_model_kwargs": {}, "tokenizer_class": "LlamaTokenizer",
        "trust_remote_code": False, "unk_token": "<unk>", "use_default_system_prompt": False,
    }
    dump_json(os.path.join(out, "tokenizer_config.json"), cfg)
    special = {k: {kk: vv for kk, vv in entry(v).items() if kk != "special"}
               for k, v in (("bos_token", "<s>"), ("eos_token", "</s>"), ("pad_token", "<pad>"),
                            ("unk_token", "<unk>"))}
    dump_json(os.path.join(out, "special_tokens_map.json"), special)
    dump_json(os.path.join(out, "added_tokens.json"), {"<image>": image_id, "<pad>": pad_id})
    return n, image_id, pad_id


def dump_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_processor_files(out, image_size, patch_size, strategy="default", pinpoints=None):
    """preprocessor_config.json (CLIPImageProcessor: resize the shortest edge, centre crop; with
    `pinpoints` LLaVA-NeXT's LlavaNextImageProcessor), processor_config.json and chat_template.json."""
    pre = {
        "crop_size": {"height": image_size, "width": image_size}, "do_center_crop": True, "do_convert_rgb": True,
        "do_normalize": True, "do_rescale": True, "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "CLIPImageProcessor",
        "image_std": [0.26862954, 0.26130258, 0.27577711], "processor_class": "LlavaProcessor", "resample": 3,
        "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": image_size}}
    proc_class = "LlavaProcessor"
    if pinpoints:
        proc_class = "LlavaNextProcessor"
        pre.update({"image_processor_type": "LlavaNextImageProcessor", "processor_class": proc_class,
                    "do_pad": True, "image_grid_pinpoints": [list(p) for p in pinpoints]})
    dump_json(os.path.join(out, "preprocessor_config.json"), pre)
    dump_json(os.path.join(out, "processor_config.json"), {
        "image_token": "<image>", "num_additional_image_tokens": 1, "patch_size": patch_size,
        "processor_class": proc_class, "vision_feature_select_strategy": strategy})
    dump_json(os.path.join(out, "chat_template.json"), {"chat_template": LLAVA_HF_CHAT_TEMPLATE})
