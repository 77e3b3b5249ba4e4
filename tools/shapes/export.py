"""Writes the trained dartlens-shapes state (train_state.pt of tools/shapes/train.py) as a llava-hf
checkpoint: HF's save_pretrained (config.json, model.safetensors in float32, generation_config.json)
plus the tokenizer and processor files of llava-hf/llava-1.5-7b-hf (tools/llava_hf_files.py)."""
import json
import os
import shutil
import sys


def export(work, out, recipe):
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from llava_hf_files import write_processor_files, write_tokenizer_files
    from train import Encoder, build_model

    spm_model = os.path.join(work, "tokenizer.model")
    n_image = (recipe["size"] // 14) ** 2
    enc = Encoder(spm_model, n_image)
    model = build_model(recipe, enc.n, enc.image_id, enc.pad_id)
    state = torch.load(os.path.join(work, "train_state.pt"), weights_only=False)
    model.load_state_dict(state["model"])
    model.eval()
    card = None
    if os.path.exists(os.path.join(out, "README.md")):  # the model card stays
        card = open(os.path.join(out, "README.md"), encoding="utf-8").read()
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    if card is not None:
        with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as f:
            f.write(card)
    sp_pieces, image_id, pad_id = write_tokenizer_files(out, spm_model)
    if (sp_pieces, image_id, pad_id) != (enc.n, enc.image_id, enc.pad_id):
        raise RuntimeError("tokenizer ids differ from training")
    model.config._name_or_path = "dartlens-shapes"
    model.generation_config.bos_token_id = 1
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = pad_id
    model.save_pretrained(out)
    write_processor_files(out, recipe["size"], 14, "default")
    with open(os.path.join(out, "training.json"), "w") as f:
        json.dump({"recipe": recipe, "steps_trained": state["step"]}, f, indent=2)
        f.write("\n")
    print(f"exported step {state['step']} to {out}: {sorted(os.listdir(out))}")
