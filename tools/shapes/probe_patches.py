#!/usr/bin/env python3
"""Per-patch recognition of a shapes training state's vision tower, on held-out scenes: the dense
head's and the align cosines' argmax against patch_labels (class of object patches, background,
colour, centre patches found, classes of the scene found on at least one patch).

Usage: probe_patches.py WORK STATE SCENES_DIR [N]   (WORK holds tokenizer.model; SCENES_DIR is a
`dartlens-cli scenes --size 336x336 --masks` output with a held-out seed, e.g. 4242)
"""
import json
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch, numpy as np
from PIL import Image
import train as T
F = torch.nn.functional
work, state, d = sys.argv[1], sys.argv[2], sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 60
torch.set_num_threads(1)
r = T.RECIPE; grid = r["size"] // 14
enc = T.Encoder(os.path.join(work, "tokenizer.model"), grid * grid)
model = T.build_model(r, enc.n, enc.image_id, enc.pad_id)
st = torch.load(state, weights_only=False)
model.load_state_dict(st["model"]); model.eval()
llava = model.model
orc = T.Oracle(r["text"]["hidden_size"], grid, llava.language_model.get_input_embeddings(),
               [enc.sp.encode(c)[0] for c in T.CLASSES], [enc.sp.encode(c)[0] for c in T.COLORS])
orc.load_state_dict(st["oracle"])
aux = torch.nn.Linear(r["vision"]["hidden_size"], 17 + 11 + 2); aux.load_state_dict(st["aux"])
cap = {}
llava.multi_modal_projector.register_forward_hook(lambda m, i, o: cap.__setitem__("f", i[0]))

scenes = [json.loads(l) for l in open(d + "/scenes.jsonl")][:n]
ct, kt = (F.normalize(t.float(), dim=-1) for t in orc.tables())
acc = {k: [] for k in ("aux_cls_obj", "aux_cls_bg", "aux_col_obj", "aln_cls_obj", "aln_cls_bg", "aln_col_obj", "ctr_recall", "present_any")}
with torch.no_grad():
    for s in scenes:
        s["mask"] = T.load_mask(d, s)
        c, k, z = (torch.from_numpy(a) for a in T.patch_labels(s, r["size"], 14)[:3])
        px = np.asarray(Image.open(os.path.join(d, s["image"])).convert("RGB"))[None]
        proj = llava.get_image_features(pixel_values=T.to_pixel_values(px), vision_feature_layer=-1,
                                        vision_feature_select_strategy="default").pooler_output[0].float()
        al = aux(cap.pop("f"))[0].float()
        pc, pk = al[:, :17].argmax(-1), al[:, 17:28].argmax(-1)
        pn = F.normalize(proj, dim=-1)
        ac, ak = (pn @ ct.T).argmax(-1), (pn @ kt.T).argmax(-1)
        obj = c > 0
        acc["aux_cls_obj"].append((pc[obj] == c[obj]).float().mean().item())
        acc["aux_cls_bg"].append((pc[~obj] == 0).float().mean().item())
        acc["aux_col_obj"].append((pk[obj] == k[obj]).float().mean().item())
        acc["aln_cls_obj"].append((ac[obj] == c[obj]).float().mean().item())
        acc["aln_cls_bg"].append((ac[~obj] == 0).float().mean().item())
        acc["aln_col_obj"].append((ak[obj] == k[obj]).float().mean().item())
        acc["ctr_recall"].append((al[:, 28:].argmax(-1)[z == 1] == 1).float().mean().item())
        # every present class found by the align argmax on at least one patch
        pres = set(c[obj].tolist()); found = set(ac[ac > 0].tolist())
        acc["present_any"].append(len(pres & found) / max(1, len(pres)))
print(os.path.basename(state), {k: round(float(np.mean(v)), 3) for k, v in acc.items()})
