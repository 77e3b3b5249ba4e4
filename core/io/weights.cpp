// LLaVA weight loading: the expected tensor list from the config, name layout detection, one
// validation pass collecting every problem, then conversion (zero-copy where dtype/device match).
#include "core/io/weights.h"

#include <algorithm>
#include <set>

#include "core/common.h"
#include "core/progress.h"
#include "core/io/safetensors.h"

namespace dl {

namespace {

enum WeightKind { WEIGHT_MATRIX, WEIGHT_NORM, WEIGHT_BIAS };

struct WeightSpec {
    std::string name;              // canonical (layout A) name
    std::vector<int64_t> shape;
    WeightKind kind;
    bool optional;                 // CLIP layers past the feature layer, post_layernorm
    bool vision;
};

// Every tensor of the model, canonical names in state_dict order, with expected shapes.
std::vector<WeightSpec> weight_specs(const LlavaConfig& c) {
    std::vector<WeightSpec> s;
    const VisionConfig& v = c.vision;
    const TextConfig& t = c.text;
    const int64_t C = v.hidden_size, I = v.intermediate_size, P = v.patch_size;
    const int64_t G = v.grid();
    const std::string vp = "vision_tower.vision_model.";
    const int needed = clip_layers_needed(c);
    auto add = [&](const std::string& name, std::vector<int64_t> shape, WeightKind kind, bool optional,
                   bool vision) { s.push_back({name, std::move(shape), kind, optional, vision}); };

    add(vp + "embeddings.class_embedding", {C}, WEIGHT_MATRIX, false, true);
    add(vp + "embeddings.patch_embedding.weight", {C, v.num_channels, P, P}, WEIGHT_MATRIX, false, true);
    add(vp + "embeddings.position_embedding.weight", {G * G + 1, C}, WEIGHT_MATRIX, false, true);
    add(vp + "pre_layrnorm.weight", {C}, WEIGHT_NORM, false, true);
    add(vp + "pre_layrnorm.bias", {C}, WEIGHT_BIAS, false, true);
    for (int l = 0; l < v.num_hidden_layers; ++l) {
        const std::string p = str_cat(vp, "encoder.layers.", l, ".");
        const bool opt = l >= needed;
        for (const char* proj : {"k_proj", "v_proj", "q_proj", "out_proj"}) {
            add(p + "self_attn." + proj + ".weight", {C, C}, WEIGHT_MATRIX, opt, true);
            add(p + "self_attn." + proj + ".bias", {C}, WEIGHT_BIAS, opt, true);
        }
        add(p + "layer_norm1.weight", {C}, WEIGHT_NORM, opt, true);
        add(p + "layer_norm1.bias", {C}, WEIGHT_BIAS, opt, true);
        add(p + "mlp.fc1.weight", {I, C}, WEIGHT_MATRIX, opt, true);
        add(p + "mlp.fc1.bias", {I}, WEIGHT_BIAS, opt, true);
        add(p + "mlp.fc2.weight", {C, I}, WEIGHT_MATRIX, opt, true);
        add(p + "mlp.fc2.bias", {C}, WEIGHT_BIAS, opt, true);
        add(p + "layer_norm2.weight", {C}, WEIGHT_NORM, opt, true);
        add(p + "layer_norm2.bias", {C}, WEIGHT_BIAS, opt, true);
    }
    add(vp + "post_layernorm.weight", {C}, WEIGHT_NORM, true, true);
    add(vp + "post_layernorm.bias", {C}, WEIGHT_BIAS, true, true);

    const int64_t d = t.hidden_size, V = t.vocab_size, D = t.head_dim();
    const int64_t H = t.num_attention_heads, Hkv = t.num_key_value_heads, FF = t.intermediate_size;
    add("multi_modal_projector.linear_1.weight", {d, C}, WEIGHT_MATRIX, false, false);
    if (c.multimodal_projector_bias) add("multi_modal_projector.linear_1.bias", {d}, WEIGHT_BIAS, false, false);
    add("multi_modal_projector.linear_2.weight", {d, d}, WEIGHT_MATRIX, false, false);
    if (c.multimodal_projector_bias) add("multi_modal_projector.linear_2.bias", {d}, WEIGHT_BIAS, false, false);
    if (c.is_next()) add("image_newline", {d}, WEIGHT_MATRIX, false, false);  // LLaVA-NeXT's row separator

    add("language_model.model.embed_tokens.weight", {V, d}, WEIGHT_MATRIX, false, false);
    for (int l = 0; l < t.num_hidden_layers; ++l) {
        const std::string p = str_cat("language_model.model.layers.", l, ".");
        const std::vector<std::pair<const char*, std::vector<int64_t>>> attn = {
            {"q_proj", {H * D, d}}, {"k_proj", {Hkv * D, d}}, {"v_proj", {Hkv * D, d}}, {"o_proj", {d, H * D}}};
        for (const auto& [proj, shape] : attn) {
            add(p + "self_attn." + proj + ".weight", shape, WEIGHT_MATRIX, false, false);
            if (t.attention_bias) add(p + "self_attn." + proj + ".bias", {shape[0]}, WEIGHT_BIAS, false, false);
        }
        add(p + "mlp.gate_proj.weight", {FF, d}, WEIGHT_MATRIX, false, false);
        add(p + "mlp.up_proj.weight", {FF, d}, WEIGHT_MATRIX, false, false);
        add(p + "mlp.down_proj.weight", {d, FF}, WEIGHT_MATRIX, false, false);
        add(p + "input_layernorm.weight", {d}, WEIGHT_NORM, false, false);
        add(p + "post_attention_layernorm.weight", {d}, WEIGHT_NORM, false, false);
    }
    add("language_model.model.norm.weight", {d}, WEIGHT_NORM, false, false);
    // Tied checkpoints usually omit lm_head; when present it is ignored in favour of the embedding.
    add("language_model.lm_head.weight", {V, d}, WEIGHT_MATRIX, t.tie_word_embeddings, false);
    return s;
}

struct Layout {
    const char* label;
    const char* probe;  // the embed_tokens name that identifies it
};
const Layout k_layouts[] = {
    {"llava-hf", "language_model.model.embed_tokens.weight"},
    {"transformers>=4.52", "model.language_model.embed_tokens.weight"},
    {"original-llava", "model.embed_tokens.weight"},
    // transformers 5's save_pretrained: llava-hf names, but CLIP flattened (no "vision_model.").
    {"transformers>=5", "language_model.model.embed_tokens.weight"},
};

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// Canonical (A) name -> the name in layout `index` (0 A, 1 B, 2 C, 3 D).
std::string layout_name(const std::string& canonical, int index) {
    if (index == 0) return canonical;
    if (index == 3) {
        static const std::string from = "vision_tower.vision_model.";
        return starts_with(canonical, from) ? "vision_tower." + canonical.substr(from.size()) : canonical;
    }
    static const std::vector<std::pair<std::string, std::string>> to_b = {
        {"language_model.model.", "model.language_model."},
        {"language_model.lm_head.", "lm_head."},
        {"vision_tower.", "model.vision_tower."},
        {"multi_modal_projector.", "model.multi_modal_projector."},
        {"image_newline", "model.image_newline"}};
    static const std::vector<std::pair<std::string, std::string>> to_c = {
        {"language_model.model.", "model."},
        {"language_model.lm_head.", "lm_head."},
        {"vision_tower.", "model.vision_tower.vision_tower."},
        {"multi_modal_projector.linear_1.", "model.mm_projector.0."},
        {"multi_modal_projector.linear_2.", "model.mm_projector.2."},
        {"image_newline", "model.image_newline"}};
    for (const auto& [from, to] : index == 1 ? to_b : to_c)
        if (starts_with(canonical, from)) return to + canonical.substr(from.size());
    return canonical;
}

bool ignored_buffer(const std::string& name) {
    auto ends_with = [&](const std::string& suffix) {
        return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    return ends_with(".position_ids") || ends_with("rotary_emb.inv_freq");
}

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += str_cat(i ? "," : "", shape[i]);
    return s + "]";
}

// "a, b, c and 12 more"
std::string name_list(const std::vector<std::string>& names, size_t limit = 10) {
    std::string s;
    for (size_t i = 0; i < names.size() && i < limit; ++i) s += (i ? ", " : "") + names[i];
    if (names.size() > limit) s += str_cat(" and ", names.size() - limit, " more");
    return s;
}

}  // namespace

int clip_layers_needed(const LlavaConfig& config) {
    // hidden_states[i] is the output after i layers; negative indices count from L+1 entries.
    const int L = config.vision.num_hidden_layers;
    const int layer = config.vision_feature_layers.empty() ? -2 : config.vision_feature_layers[0];
    return layer >= 0 ? layer : L + 1 + layer;
}

std::vector<std::string> canonical_weight_names(const LlavaConfig& config) {
    std::vector<std::string> names;
    for (const auto& s : weight_specs(config))
        if (!(s.name == "language_model.lm_head.weight" && config.text.tie_word_embeddings))
            names.push_back(s.name);
    return names;
}

LlavaWeights load_llava_weights(const WeightStore& store, const LlavaConfig& config, at::ScalarType dtype,
                                at::Device device) {
    const std::string where = store.dir();
    if (config.text.mlp_bias)
        throw Error(str_cat(where, ": config.json: text_config.mlp_bias true is not supported"));
    if (dtype != at::kFloat && dtype != at::kHalf && dtype != at::kBFloat16)
        throw Error(str_cat(where, ": compute dtype ", c10::toString(dtype), " is not a float type"));

    int layout = -1;
    for (int i = 0; i < 3; ++i)
        if (store.has(k_layouts[i].probe)) {
            layout = i;
            break;
        }
    if (layout == 0 && !store.has("vision_tower.vision_model.embeddings.class_embedding") &&
        store.has("vision_tower.embeddings.class_embedding"))
        layout = 3;
    if (layout < 0)
        throw Error(str_cat(where, ": unrecognised checkpoint layout: no language_model.model.embed_tokens.weight, "
                                   "model.language_model.embed_tokens.weight or model.embed_tokens.weight"));

    const std::vector<WeightSpec> specs = weight_specs(config);
    std::vector<std::string> missing, misshaped, bad_dtype, unexpected;
    std::set<std::string> expected_names;
    int vision_required = 0, vision_missing = 0;
    int64_t num_parameters = 0;
    for (const auto& s : specs) {
        const std::string name = layout_name(s.name, layout);
        expected_names.insert(name);
        if (s.vision && !s.optional) ++vision_required;
        if (!store.has(name)) {
            if (!s.optional) missing.push_back(name);
            if (s.vision && !s.optional) ++vision_missing;
            continue;
        }
        const TensorView& v = store.view(name);
        if (v.shape != s.shape)
            misshaped.push_back(str_cat(name, " ", shape_str(v.shape), " expected ", shape_str(s.shape)));
        if (v.dtype != "F32" && v.dtype != "F16" && v.dtype != "BF16")
            bad_dtype.push_back(str_cat(name, " ", v.dtype));
        if (!(s.optional && s.name == "language_model.lm_head.weight")) num_parameters += v.numel();
    }
    for (const auto& name : store.names())
        if (!expected_names.count(name) && !ignored_buffer(name)) unexpected.push_back(name);

    if (vision_missing == vision_required && vision_required > 0) {
        const std::string prefix = layout_name("vision_tower.", layout);
        throw Error(str_cat(where, ": the vision tower is missing (no ", prefix, "* tensors in the ",
                            k_layouts[layout].label, " checkpoint)",
                            layout == 2 ? "; original LLaVA checkpoints that load CLIP separately are not "
                                          "supported: convert to llava-hf (transformers' convert_llava_weights_to_hf)"
                                        : ""));
    }
    if (!missing.empty() || !misshaped.empty() || !bad_dtype.empty() || !unexpected.empty()) {
        std::string msg = str_cat(where, ": checkpoint (", k_layouts[layout].label, " layout) does not match config.json:");
        if (!missing.empty()) msg += str_cat(" ", missing.size(), " missing: ", name_list(missing), ";");
        if (!misshaped.empty()) msg += str_cat(" ", misshaped.size(), " misshaped: ", name_list(misshaped), ";");
        if (!bad_dtype.empty()) msg += str_cat(" ", bad_dtype.size(), " not F32/F16/BF16: ", name_list(bad_dtype), ";");
        if (!unexpected.empty()) msg += str_cat(" ", unexpected.size(), " unexpected: ", name_list(unexpected), ";");
        msg.pop_back();
        throw Error(msg);
    }

    // Everything checked: convert. Norm weights and biases stay float32. This is where a 7B
    // checkpoint spends its load time (reading the mapping, converting, copying to the GPU), so
    // progress is reported per tensor, by bytes, and a cancel stops at the next tensor.
    const std::string vp = "vision_tower.vision_model.";
    const bool has_post_ln = store.has(layout_name(vp + "post_layernorm.weight", layout)) &&
                             store.has(layout_name(vp + "post_layernorm.bias", layout));
    int64_t bytes_total = 0, bytes_done = 0;
    for (const auto& s : specs) {
        const bool converted = !s.optional || (has_post_ln && starts_with(s.name, vp + "post_layernorm."));
        if (converted) bytes_total += int64_t(store.view(layout_name(s.name, layout)).nbytes);
    }
    progress_step(0, double(bytes_total), "weights");
    auto get = [&](const std::string& canonical, WeightKind kind) -> at::Tensor {
        const TensorView& view = store.view(layout_name(canonical, layout));
        at::Tensor t = tensor_from_view(view, kind == WEIGHT_MATRIX ? dtype : at::kFloat, device);
        bytes_done += int64_t(view.nbytes);
        progress_step(double(bytes_done), double(bytes_total), "weights");
        return t;
    };
    LlavaWeights w;
    w.layout = k_layouts[layout].label;
    w.stored_dtype = store.view(k_layouts[layout].probe).dtype;
    w.stored_bytes = store.total_bytes();
    w.num_parameters = num_parameters;

    ClipWeights& cw = w.vision;
    cw.class_embedding = get(vp + "embeddings.class_embedding", WEIGHT_MATRIX);
    cw.patch_embedding = get(vp + "embeddings.patch_embedding.weight", WEIGHT_MATRIX);
    cw.position_embedding = get(vp + "embeddings.position_embedding.weight", WEIGHT_MATRIX);
    cw.pre_ln_w = get(vp + "pre_layrnorm.weight", WEIGHT_NORM);
    cw.pre_ln_b = get(vp + "pre_layrnorm.bias", WEIGHT_BIAS);
    const int needed = clip_layers_needed(config);
    for (int l = 0; l < needed; ++l) {
        const std::string p = str_cat(vp, "encoder.layers.", l, ".");
        ClipLayerWeights L;
        L.ln1_w = get(p + "layer_norm1.weight", WEIGHT_NORM);
        L.ln1_b = get(p + "layer_norm1.bias", WEIGHT_BIAS);
        L.q_w = get(p + "self_attn.q_proj.weight", WEIGHT_MATRIX);
        L.q_b = get(p + "self_attn.q_proj.bias", WEIGHT_BIAS);
        L.k_w = get(p + "self_attn.k_proj.weight", WEIGHT_MATRIX);
        L.k_b = get(p + "self_attn.k_proj.bias", WEIGHT_BIAS);
        L.v_w = get(p + "self_attn.v_proj.weight", WEIGHT_MATRIX);
        L.v_b = get(p + "self_attn.v_proj.bias", WEIGHT_BIAS);
        L.o_w = get(p + "self_attn.out_proj.weight", WEIGHT_MATRIX);
        L.o_b = get(p + "self_attn.out_proj.bias", WEIGHT_BIAS);
        L.ln2_w = get(p + "layer_norm2.weight", WEIGHT_NORM);
        L.ln2_b = get(p + "layer_norm2.bias", WEIGHT_BIAS);
        L.fc1_w = get(p + "mlp.fc1.weight", WEIGHT_MATRIX);
        L.fc1_b = get(p + "mlp.fc1.bias", WEIGHT_BIAS);
        L.fc2_w = get(p + "mlp.fc2.weight", WEIGHT_MATRIX);
        L.fc2_b = get(p + "mlp.fc2.bias", WEIGHT_BIAS);
        cw.layers.push_back(std::move(L));
    }
    if (has_post_ln) {
        cw.post_ln_w = get(vp + "post_layernorm.weight", WEIGHT_NORM);
        cw.post_ln_b = get(vp + "post_layernorm.bias", WEIGHT_BIAS);
    }

    ProjectorWeights& pw = w.projector;
    pw.l1_w = get("multi_modal_projector.linear_1.weight", WEIGHT_MATRIX);
    pw.l2_w = get("multi_modal_projector.linear_2.weight", WEIGHT_MATRIX);
    if (config.multimodal_projector_bias) {
        pw.l1_b = get("multi_modal_projector.linear_1.bias", WEIGHT_BIAS);
        pw.l2_b = get("multi_modal_projector.linear_2.bias", WEIGHT_BIAS);
    }
    if (config.is_next()) {
        w.image_newline = get("image_newline", WEIGHT_MATRIX);
    }

    LlamaWeights& tw = w.text;
    tw.embed_tokens = get("language_model.model.embed_tokens.weight", WEIGHT_MATRIX);
    for (int l = 0; l < config.text.num_hidden_layers; ++l) {
        const std::string p = str_cat("language_model.model.layers.", l, ".");
        LlamaLayerWeights L;
        L.input_norm = get(p + "input_layernorm.weight", WEIGHT_NORM);
        L.q_w = get(p + "self_attn.q_proj.weight", WEIGHT_MATRIX);
        L.k_w = get(p + "self_attn.k_proj.weight", WEIGHT_MATRIX);
        L.v_w = get(p + "self_attn.v_proj.weight", WEIGHT_MATRIX);
        L.o_w = get(p + "self_attn.o_proj.weight", WEIGHT_MATRIX);
        if (config.text.attention_bias) {
            L.q_b = get(p + "self_attn.q_proj.bias", WEIGHT_BIAS);
            L.k_b = get(p + "self_attn.k_proj.bias", WEIGHT_BIAS);
            L.v_b = get(p + "self_attn.v_proj.bias", WEIGHT_BIAS);
            L.o_b = get(p + "self_attn.o_proj.bias", WEIGHT_BIAS);
        }
        L.post_norm = get(p + "post_attention_layernorm.weight", WEIGHT_NORM);
        L.gate_w = get(p + "mlp.gate_proj.weight", WEIGHT_MATRIX);
        L.up_w = get(p + "mlp.up_proj.weight", WEIGHT_MATRIX);
        L.down_w = get(p + "mlp.down_proj.weight", WEIGHT_MATRIX);
        tw.layers.push_back(std::move(L));
    }
    tw.norm = get("language_model.model.norm.weight", WEIGHT_NORM);
    tw.lm_head = config.text.tie_word_embeddings ? tw.embed_tokens
                                                 : get("language_model.lm_head.weight", WEIGHT_MATRIX);
    return w;
}

}  // namespace dl
