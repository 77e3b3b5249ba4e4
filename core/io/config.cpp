// config.json / preprocessor_config.json / generation_config.json parsing with HF's defaults,
// type checks that name the key, invariant checks, and HF-style (diffed) serialisation.
#include "core/io/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

#include "core/common.h"
#include "core/io/json_util.h"

namespace dl {

namespace {

using json = nlohmann::json;

// Reads typed values from one JSON object; errors read "<source>: <prefix><key>: <what>".
struct Reader {
    const json& obj;
    std::string source;
    std::string prefix;  // "" or "text_config."

    Error error(const std::string& key, const std::string& what) const {
        return Error(str_cat(source, ": ", prefix, key, ": ", what));
    }
    Error type_error(const std::string& key, const char* expected) const {
        return error(key, str_cat("expected ", expected, ", got ", obj.at(key).type_name()));
    }
    // Present and not null.
    bool has(const std::string& key) const { return obj.contains(key) && !obj.at(key).is_null(); }

    // A JSON integer that fits an int; `name` is the key, or "key[i]" for a list element.
    int to_int(const json& v, const std::string& name) const {
        int64_t value = 0;
        const std::string why =
            json_int(v, std::numeric_limits<int>::min(), std::numeric_limits<int>::max(), &value);
        if (!why.empty()) throw error(name, why);
        return static_cast<int>(value);
    }
    int get_int(const std::string& key, int fallback) const {
        if (!has(key)) return fallback;
        return to_int(obj.at(key), key);
    }
    // Token ids may be given as a list (e.g. several eos ids): returns all of them, each checked
    // like get_int (errors name "key[i]").
    std::vector<int> get_int_or_list(const std::string& key, const std::vector<int>& fallback) const {
        if (!has(key)) return fallback;
        const json& v = obj.at(key);
        if (v.is_number_integer()) return {get_int(key, 0)};
        if (!v.is_array()) throw type_error(key, "integer or list of integers");
        std::vector<int> out;
        for (size_t i = 0; i < v.size(); ++i) out.push_back(to_int(v[i], str_cat(key, "[", i, "]")));
        if (out.empty()) throw error(key, "empty list");
        return out;
    }
    double get_double(const std::string& key, double fallback) const {
        if (!has(key)) return fallback;
        const json& v = obj.at(key);
        if (!v.is_number()) throw type_error(key, "number");
        double d = v.get<double>();
        if (!std::isfinite(d)) throw error(key, "not finite");
        return d;
    }
    bool get_bool(const std::string& key, bool fallback) const {
        if (!has(key)) return fallback;
        const json& v = obj.at(key);
        if (!v.is_boolean()) throw type_error(key, "boolean");
        return v.get<bool>();
    }
    std::string get_string(const std::string& key, const std::string& fallback) const {
        if (!has(key)) return fallback;
        const json& v = obj.at(key);
        if (!v.is_string()) throw type_error(key, "string");
        return v.get<std::string>();
    }
    // A nested object ("text_config"); an empty object when absent.
    const json& get_object(const std::string& key, const json& empty) const {
        if (!has(key)) return empty;
        const json& v = obj.at(key);
        if (!v.is_object()) throw type_error(key, "object");
        return v;
    }
};

void require_positive(const Reader& r, const std::string& key, double value) {
    if (!(value > 0)) throw r.error(key, str_cat("must be positive, got ", value));
}

// CLIPVisionConfig()'s own defaults; HF writes a vision key when it differs from these OR from
// LlavaConfig's CLIP-L/336 defaults (recursive_diff_dict).
const VisionConfig k_clip_class_defaults = [] {
    VisionConfig v;
    v.hidden_size = 768;
    v.intermediate_size = 3072;
    v.num_hidden_layers = 12;
    v.num_attention_heads = 12;
    v.image_size = 224;
    v.patch_size = 32;
    v.projection_dim = 512;
    return v;
}();

// MistralConfig()'s defaults where they differ from LlamaConfig()'s.
TextConfig mistral_defaults() {
    TextConfig t;
    t.model_type = "mistral";
    t.intermediate_size = 14336;
    t.num_key_value_heads = 8;
    t.max_position_embeddings = 4096 * 32;
    t.sliding_window = 4096;
    return t;
}

// image_grid_pinpoints: a list of [height, width] pairs of positive multiples of `tile` (the
// vision tower's image_size: HF counts tiles by ceil in one place and floor in another, so only
// whole tiles give one answer).
std::vector<Resolution> read_pinpoints(const Reader& r, const std::string& key, int tile) {
    const json& a = r.obj.at(key);
    if (!a.is_array() || a.empty()) throw r.error(key, "expected a non-empty list of [height, width] pairs");
    std::vector<Resolution> out;
    for (size_t i = 0; i < a.size(); ++i) {
        const std::string name = str_cat(key, "[", i, "]");
        if (!a[i].is_array() || a[i].size() != 2) throw r.error(name, "expected [height, width]");
        Resolution res{r.to_int(a[i][0], name + "[0]"), r.to_int(a[i][1], name + "[1]")};
        if (res.height <= 0 || res.width <= 0) throw r.error(name, "must be positive");
        if (tile > 0 && (res.height % tile != 0 || res.width % tile != 0))
            throw r.error(name, str_cat(res.height, "x", res.width, " is not a multiple of the vision image_size ", tile));
        if (tile > 0 && int64_t(res.height / tile) * (res.width / tile) > 64)
            throw r.error(name, str_cat(res.height, "x", res.width, " makes more than 64 tiles"));
        out.push_back(res);
    }
    return out;
}

}  // namespace

std::vector<Resolution> default_grid_pinpoints() {
    return {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};
}

// --- LlavaConfig ------------------------------------------------------------------------------

LlavaConfig LlavaConfig::from_json(const json& j, const std::string& source) {
    if (!j.is_object()) throw Error(str_cat(source, ": top level is not a JSON object"));
    LlavaConfig c;
    const json empty = json::object();
    Reader top{j, source, ""};

    c.model_type = top.get_string("model_type", "llava");
    if (c.model_type != "llava" && c.model_type != "llava_next")
        throw top.error("model_type", str_cat("expected \"llava\" or \"llava_next\", got \"", c.model_type,
                                              "\" (LlavaForConditionalGeneration and LlavaNextForConditionalGeneration ",
                                              "configs are supported)"));

    // vision_config: LlavaConfig's CLIP-L/336 defaults.
    const json& vj = top.get_object("vision_config", empty);
    Reader vr{vj, source, "vision_config."};
    VisionConfig& v = c.vision;
    std::string vtype = vr.get_string("model_type", "clip_vision_model");
    if (vtype != "clip_vision_model")
        throw vr.error("model_type", str_cat("expected \"clip_vision_model\", got \"", vtype, "\""));
    v.hidden_size = vr.get_int("hidden_size", v.hidden_size);
    v.intermediate_size = vr.get_int("intermediate_size", v.intermediate_size);
    v.num_hidden_layers = vr.get_int("num_hidden_layers", v.num_hidden_layers);
    v.num_attention_heads = vr.get_int("num_attention_heads", v.num_attention_heads);
    v.num_channels = vr.get_int("num_channels", v.num_channels);
    v.image_size = vr.get_int("image_size", v.image_size);
    v.patch_size = vr.get_int("patch_size", v.patch_size);
    v.projection_dim = vr.get_int("projection_dim", v.projection_dim);
    v.layer_norm_eps = vr.get_double("layer_norm_eps", v.layer_norm_eps);
    v.hidden_act = vr.get_string("hidden_act", v.hidden_act);

    // text_config: LlamaConfig() defaults.
    const json& tj = top.get_object("text_config", empty);
    Reader tr{tj, source, "text_config."};
    TextConfig& t = c.text;
    std::string ttype = tr.get_string("model_type", "llama");
    if (ttype == "mistral") t = mistral_defaults();
    else if (ttype != "llama")
        throw tr.error("model_type", str_cat("expected \"llama\" or \"mistral\", got \"", ttype, "\""));
    t.vocab_size = tr.get_int("vocab_size", t.vocab_size);
    t.hidden_size = tr.get_int("hidden_size", t.hidden_size);
    t.intermediate_size = tr.get_int("intermediate_size", t.intermediate_size);
    t.num_hidden_layers = tr.get_int("num_hidden_layers", t.num_hidden_layers);
    t.num_attention_heads = tr.get_int("num_attention_heads", t.num_attention_heads);
    // LlamaConfig: omitted = num_attention_heads; MistralConfig: omitted = 8.
    t.num_key_value_heads = tr.get_int("num_key_value_heads", ttype == "mistral" ? t.num_key_value_heads
                                                                                 : t.num_attention_heads);
    t.max_position_embeddings = tr.get_int("max_position_embeddings", t.max_position_embeddings);
    t.rms_norm_eps = tr.get_double("rms_norm_eps", t.rms_norm_eps);
    t.rope_theta = tr.get_double("rope_theta", t.rope_theta);
    t.hidden_act = tr.get_string("hidden_act", t.hidden_act);
    t.attention_bias = tr.get_bool("attention_bias", t.attention_bias);
    t.mlp_bias = tr.get_bool("mlp_bias", t.mlp_bias);
    t.head_dim_override = tr.get_int("head_dim", 0);
    if (ttype == "mistral") {
        // null (or absent from a config that says null explicitly) = full causal attention
        if (tj.contains("sliding_window") && tj.at("sliding_window").is_null()) t.sliding_window = 0;
        else t.sliding_window = tr.get_int("sliding_window", t.sliding_window);
        if (t.sliding_window < 0) throw tr.error("sliding_window", "must be positive or null");
    }
    t.bos_token_id = tr.get_int("bos_token_id", t.bos_token_id);
    t.eos_token_id = tr.get_int_or_list("eos_token_id", {t.eos_token_id})[0];
    t.pad_token_id = tr.get_int("pad_token_id", -1);
    if (tr.has("pretraining_tp") && tr.get_int("pretraining_tp", 1) != 1)
        throw tr.error("pretraining_tp", "only 1 is supported");
    // RoPE variants change the numbers: refuse them instead of computing something else.
    if (tr.has("rope_scaling")) {
        const json& rs = tj.at("rope_scaling");
        if (!rs.is_object()) throw tr.type_error("rope_scaling", "object or null");
        std::string type = rs.contains("rope_type") && rs["rope_type"].is_string()
                               ? rs["rope_type"].get<std::string>()
                               : (rs.contains("type") && rs["type"].is_string() ? rs["type"].get<std::string>() : "");
        if (type != "default")
            throw tr.error("rope_scaling", str_cat("rope scaling ", rs.dump(),
                                                   " is not supported (only plain RoPE)"));
    }
    if (tr.has("rope_parameters")) {  // newer transformers spell RoPE settings this way
        const json& rp = tj.at("rope_parameters");
        if (!rp.is_object()) throw tr.type_error("rope_parameters", "object or null");
        Reader rr{rp, source, "text_config.rope_parameters."};
        std::string type = rr.get_string("rope_type", "default");
        if (type != "default")
            throw tr.error("rope_parameters", str_cat("rope type \"", type, "\" is not supported (only plain RoPE)"));
        t.rope_theta = rr.get_double("rope_theta", t.rope_theta);
    }
    // Tying: the text model decides (HF ties through the language model); top level is a fallback.
    t.tie_word_embeddings = tr.has("tie_word_embeddings")
                                ? tr.get_bool("tie_word_embeddings", false)
                                : top.get_bool("tie_word_embeddings", false);

    // Top level.
    c.image_token_index = top.get_int("image_token_index", top.get_int("image_token_id", c.image_token_index));
    if (top.has("image_token_index") && top.has("image_token_id") &&
        top.get_int("image_token_index", 0) != top.get_int("image_token_id", 0))
        throw top.error("image_token_id", str_cat("disagrees with image_token_index (",
                                                  top.get_int("image_token_id", 0), " vs ",
                                                  c.image_token_index, ")"));
    c.pad_token_id = top.get_int("pad_token_id", -1);
    c.projector_hidden_act = top.get_string("projector_hidden_act", c.projector_hidden_act);
    c.multimodal_projector_bias = top.get_bool("multimodal_projector_bias", c.multimodal_projector_bias);
    if (top.has("vision_feature_layer")) {
        c.vision_feature_layers = top.get_int_or_list("vision_feature_layer", {});
        if (c.vision_feature_layers.size() != 1)
            throw top.error("vision_feature_layer",
                            str_cat("a list of ", c.vision_feature_layers.size(),
                                    " layers is not supported (one layer only)"));
    }
    c.vision_feature_select_strategy =
        top.get_string("vision_feature_select_strategy", c.vision_feature_select_strategy);
    c.image_seq_length = top.get_int("image_seq_length", c.image_seq_length);
    if (c.is_next())
        c.image_grid_pinpoints = top.has("image_grid_pinpoints")
                                     ? read_pinpoints(top, "image_grid_pinpoints", v.image_size)
                                     : default_grid_pinpoints();
    c.random_weights = top.get_bool("dartlens_random_weights", false);
    c.name_or_path = top.get_string("_name_or_path", "");
    c.torch_dtype = top.get_string("torch_dtype", "float32");

    // Invariants.
    for (auto [key, value] : {std::pair<const char*, int>{"hidden_size", v.hidden_size},
                              {"intermediate_size", v.intermediate_size},
                              {"num_hidden_layers", v.num_hidden_layers},
                              {"num_attention_heads", v.num_attention_heads},
                              {"num_channels", v.num_channels},
                              {"image_size", v.image_size},
                              {"patch_size", v.patch_size}})
        require_positive(vr, key, value);
    require_positive(vr, "layer_norm_eps", v.layer_norm_eps);
    if (v.hidden_size % v.num_attention_heads != 0)
        throw vr.error("hidden_size", str_cat(v.hidden_size, " is not divisible by num_attention_heads ",
                                              v.num_attention_heads));
    if (v.image_size % v.patch_size != 0)
        throw vr.error("image_size", str_cat(v.image_size, " is not divisible by patch_size ", v.patch_size));
    // num_image_tokens() is grid^2 (+ 1): keep it an int.
    if (int64_t(v.grid()) * v.grid() >= std::numeric_limits<int>::max())
        throw vr.error("image_size", str_cat(v.image_size, " / patch_size ", v.patch_size, " gives ",
                                             v.grid(), "^2 patches, too many"));
    for (auto [key, value] : {std::pair<const char*, int>{"vocab_size", t.vocab_size},
                              {"hidden_size", t.hidden_size},
                              {"intermediate_size", t.intermediate_size},
                              {"num_hidden_layers", t.num_hidden_layers},
                              {"num_attention_heads", t.num_attention_heads},
                              {"num_key_value_heads", t.num_key_value_heads},
                              {"max_position_embeddings", t.max_position_embeddings}})
        require_positive(tr, key, value);
    require_positive(tr, "rms_norm_eps", t.rms_norm_eps);
    require_positive(tr, "rope_theta", t.rope_theta);
    if (t.head_dim_override < 0) throw tr.error("head_dim", "must be positive");
    if (t.head_dim_override == 0 && t.hidden_size % t.num_attention_heads != 0)
        throw tr.error("hidden_size", str_cat(t.hidden_size, " is not divisible by num_attention_heads ",
                                              t.num_attention_heads));
    if (t.head_dim() % 2 != 0) throw tr.error("head_dim", str_cat("head dim ", t.head_dim(), " is odd (RoPE needs pairs)"));
    if (t.num_attention_heads % t.num_key_value_heads != 0)
        throw tr.error("num_key_value_heads", str_cat("num_attention_heads ", t.num_attention_heads,
                                                      " is not divisible by num_key_value_heads ",
                                                      t.num_key_value_heads));
    const int64_t clip_layers = v.num_hidden_layers;  // 64-bit: -(INT_MAX + 1) must not overflow
    const bool layer_list = top.has("vision_feature_layer") && j.at("vision_feature_layer").is_array();
    for (size_t i = 0; i < c.vision_feature_layers.size(); ++i) {
        const int layer = c.vision_feature_layers[i];
        if (layer < -(clip_layers + 1) || layer > clip_layers)
            throw top.error(layer_list ? str_cat("vision_feature_layer[", i, "]") : std::string("vision_feature_layer"),
                            str_cat(layer, " is out of range for ", clip_layers, " CLIP layers (valid: ",
                                    -(clip_layers + 1), "..", clip_layers, ")"));
    }
    if (c.vision_feature_select_strategy != "default" && c.vision_feature_select_strategy != "full")
        throw top.error("vision_feature_select_strategy",
                        str_cat("expected \"default\" or \"full\", got \"", c.vision_feature_select_strategy, "\""));
    return c;
}

LlavaConfig LlavaConfig::from_file(const std::string& path) { return from_json(read_json_file(path), path); }

int LlavaConfig::num_image_tokens() const {
    return vision.num_patches() + (vision_feature_select_strategy == "full" ? 1 : 0);
}

json LlavaConfig::to_hf_json() const {
    // Mirrors PretrainedConfig.to_diff_dict of transformers 4.40.2 (sorted keys, as json.dumps).
    json j = json::object();
    j["architectures"] = json::array({is_next() ? "LlavaNextForConditionalGeneration" : "LlavaForConditionalGeneration"});
    j["ignore_index"] = -100;
    j["image_token_index"] = image_token_index;
    j["model_type"] = model_type;
    if (is_next()) {
        json pins = json::array();
        for (const Resolution& r : image_grid_pinpoints) pins.push_back({r.height, r.width});
        j["image_grid_pinpoints"] = pins;
    }
    if (pad_token_id >= 0) j["pad_token_id"] = pad_token_id;
    j["projector_hidden_act"] = projector_hidden_act;
    if (!multimodal_projector_bias) j["multimodal_projector_bias"] = false;
    if (image_seq_length != 576) j["image_seq_length"] = image_seq_length;
    if (!name_or_path.empty()) j["_name_or_path"] = name_or_path;

    const TextConfig dt = text.model_type == "mistral" ? mistral_defaults() : TextConfig();  // the class's defaults
    json tj = json::object();
    if (text.vocab_size != dt.vocab_size) tj["vocab_size"] = text.vocab_size;
    if (text.hidden_size != dt.hidden_size) tj["hidden_size"] = text.hidden_size;
    if (text.intermediate_size != dt.intermediate_size) tj["intermediate_size"] = text.intermediate_size;
    if (text.num_hidden_layers != dt.num_hidden_layers) tj["num_hidden_layers"] = text.num_hidden_layers;
    if (text.num_attention_heads != dt.num_attention_heads) tj["num_attention_heads"] = text.num_attention_heads;
    if (text.num_key_value_heads != dt.num_key_value_heads) tj["num_key_value_heads"] = text.num_key_value_heads;
    if (text.max_position_embeddings != dt.max_position_embeddings)
        tj["max_position_embeddings"] = text.max_position_embeddings;
    if (text.rms_norm_eps != dt.rms_norm_eps) tj["rms_norm_eps"] = text.rms_norm_eps;
    if (text.rope_theta != dt.rope_theta) tj["rope_theta"] = text.rope_theta;
    if (text.hidden_act != dt.hidden_act) tj["hidden_act"] = text.hidden_act;
    if (text.attention_bias != dt.attention_bias) tj["attention_bias"] = text.attention_bias;
    if (text.mlp_bias != dt.mlp_bias) tj["mlp_bias"] = text.mlp_bias;
    if (text.tie_word_embeddings != dt.tie_word_embeddings) tj["tie_word_embeddings"] = text.tie_word_embeddings;
    if (text.head_dim_override > 0) tj["head_dim"] = text.head_dim_override;
    if (text.bos_token_id != dt.bos_token_id) tj["bos_token_id"] = text.bos_token_id;
    if (text.eos_token_id != dt.eos_token_id) tj["eos_token_id"] = text.eos_token_id;
    if (text.pad_token_id >= 0) tj["pad_token_id"] = text.pad_token_id;
    if (text.model_type == "mistral" && text.sliding_window != dt.sliding_window)
        tj["sliding_window"] = text.sliding_window > 0 ? json(text.sliding_window) : json(nullptr);
    tj["model_type"] = text.model_type;
    j["text_config"] = tj;
    // PretrainedConfig's default is true, so HF writes the top-level flag only when false.
    if (!text.tie_word_embeddings) j["tie_word_embeddings"] = false;
    j["torch_dtype"] = torch_dtype.empty() ? "float32" : torch_dtype;
    j["transformers_version"] = "4.40.2";

    const VisionConfig dv;  // LlavaConfig's CLIP-L/336
    const VisionConfig& cv = k_clip_class_defaults;
    json vj = json::object();
    auto put_int = [&](const char* key, int value, int a, int b) {
        if (value != a || value != b) vj[key] = value;
    };
    put_int("hidden_size", vision.hidden_size, dv.hidden_size, cv.hidden_size);
    put_int("intermediate_size", vision.intermediate_size, dv.intermediate_size, cv.intermediate_size);
    put_int("num_hidden_layers", vision.num_hidden_layers, dv.num_hidden_layers, cv.num_hidden_layers);
    put_int("num_attention_heads", vision.num_attention_heads, dv.num_attention_heads, cv.num_attention_heads);
    put_int("num_channels", vision.num_channels, dv.num_channels, cv.num_channels);
    put_int("image_size", vision.image_size, dv.image_size, cv.image_size);
    put_int("patch_size", vision.patch_size, dv.patch_size, cv.patch_size);
    put_int("projection_dim", vision.projection_dim, dv.projection_dim, cv.projection_dim);
    if (vision.layer_norm_eps != dv.layer_norm_eps) vj["layer_norm_eps"] = vision.layer_norm_eps;
    if (vision.hidden_act != dv.hidden_act) vj["hidden_act"] = vision.hidden_act;
    vj["model_type"] = "clip_vision_model";
    j["vision_config"] = vj;
    j["vision_feature_layer"] = vision_feature_layers.size() == 1 ? json(vision_feature_layers[0])
                                                                  : json(vision_feature_layers);
    j["vision_feature_select_strategy"] = vision_feature_select_strategy;
    if (random_weights) j["dartlens_random_weights"] = true;
    return j;
}

// --- PreprocessorConfig -----------------------------------------------------------------------

PreprocessorConfig PreprocessorConfig::from_json(const json& j, const std::string& source) {
    if (!j.is_object()) throw Error(str_cat(source, ": top level is not a JSON object"));
    PreprocessorConfig p;
    Reader r{j, source, ""};
    if (r.has("size")) {
        const json& s = j.at("size");
        if (s.is_number_integer()) {
            p.shortest_edge = r.get_int("size", p.shortest_edge);
        } else if (s.is_object()) {
            Reader sr{s, source, "size."};
            if (sr.has("shortest_edge")) {
                p.shortest_edge = sr.get_int("shortest_edge", p.shortest_edge);
            } else if (sr.has("height") || sr.has("width")) {
                int h = sr.get_int("height", -1), w = sr.get_int("width", -1);
                if (h != w) throw r.error("size", str_cat("non-square resize ", h, "x", w, " is not supported"));
                p.shortest_edge = h;
            } else {
                throw r.error("size", "expected shortest_edge or height/width");
            }
        } else {
            throw r.type_error("size", "integer or object");
        }
    }
    if (r.has("crop_size")) {
        const json& s = j.at("crop_size");
        if (s.is_number_integer()) {
            p.crop_height = p.crop_width = r.get_int("crop_size", 0);
        } else if (s.is_object()) {
            Reader cr{s, source, "crop_size."};
            p.crop_height = cr.get_int("height", p.crop_height);
            p.crop_width = cr.get_int("width", p.crop_width);
        } else {
            throw r.type_error("crop_size", "integer or object");
        }
    }
    p.do_resize = r.get_bool("do_resize", p.do_resize);
    p.do_center_crop = r.get_bool("do_center_crop", p.do_center_crop);
    p.do_normalize = r.get_bool("do_normalize", p.do_normalize);
    p.do_rescale = r.get_bool("do_rescale", p.do_rescale);
    p.do_convert_rgb = r.get_bool("do_convert_rgb", p.do_convert_rgb);
    p.rescale_factor = r.get_double("rescale_factor", p.rescale_factor);
    p.resample = r.get_int("resample", p.resample);
    for (auto [key, vec] : {std::pair<const char*, std::vector<double>*>{"image_mean", &p.image_mean},
                            {"image_std", &p.image_std}}) {
        if (!r.has(key)) continue;
        const json& a = j.at(key);
        if (!a.is_array()) throw r.type_error(key, "list of 3 numbers");
        if (a.size() != 3) throw r.error(key, str_cat("expected 3 values, got ", a.size()));
        vec->clear();
        for (size_t i = 0; i < 3; ++i) {
            if (!a[i].is_number())
                throw Error(str_cat(source, ": ", key, "[", i, "]: expected number, got ", a[i].type_name()));
            vec->push_back(a[i].get<double>());
        }
    }
    for (double s : p.image_std)
        if (!(s > 0)) throw r.error("image_std", "values must be positive");
    if (p.shortest_edge <= 0) throw r.error("size", "must be positive");
    if (p.crop_height <= 0 || p.crop_width <= 0) throw r.error("crop_size", "must be positive");
    // Pad-to-square (original LLaVA-1.5) vs the llava-hf crop.
    if (r.has("image_aspect_ratio")) {
        std::string a = r.get_string("image_aspect_ratio", "");
        if (a == "pad") p.mode = "pad";
        else if (a == "square" || a == "crop") p.mode = "crop";
        else throw r.error("image_aspect_ratio", str_cat("\"", a, "\" is not supported (pad or square)"));
    }
    const std::string type = r.get_string("image_processor_type", "CLIPImageProcessor");
    p.next = type.rfind("LlavaNextImageProcessor", 0) == 0;  // also ...Fast / ...Pil
    if (p.next) {
        p.image_grid_pinpoints = r.has("image_grid_pinpoints") ? read_pinpoints(r, "image_grid_pinpoints", 0)
                                                               : default_grid_pinpoints();
        if (!r.get_bool("do_pad", true))
            throw r.error("do_pad", "false is not supported (LLaVA-NeXT's tiles are padded)");
        if (p.crop_height != p.crop_width || p.crop_height != p.shortest_edge)
            throw r.error("crop_size", str_cat("LLaVA-NeXT needs square tiles: crop ", p.crop_height, "x", p.crop_width,
                                               " and shortest_edge ", p.shortest_edge, " must be equal"));
    }
    if (r.has("dartlens_preprocess")) {
        std::string m = r.get_string("dartlens_preprocess", "");
        if (m != "pad" && m != "crop")
            throw r.error("dartlens_preprocess", str_cat("expected \"pad\" or \"crop\", got \"", m, "\""));
        p.mode = m;
    }
    return p;
}

PreprocessorConfig PreprocessorConfig::from_file(const std::string& path) {
    return from_json(read_json_file(path), path);
}

json PreprocessorConfig::to_json() const {
    // What CLIPImageProcessor.save_pretrained writes for llava-hf (sorted keys).
    json j = json::object();
    j["crop_size"] = {{"height", crop_height}, {"width", crop_width}};
    j["do_center_crop"] = do_center_crop;
    j["do_convert_rgb"] = do_convert_rgb;
    j["do_normalize"] = do_normalize;
    j["do_rescale"] = do_rescale;
    j["do_resize"] = do_resize;
    j["image_mean"] = image_mean;
    j["image_processor_type"] = next ? "LlavaNextImageProcessor" : "CLIPImageProcessor";
    j["image_std"] = image_std;
    j["processor_class"] = next ? "LlavaNextProcessor" : "LlavaProcessor";
    if (next) {
        json pins = json::array();
        for (const Resolution& r : image_grid_pinpoints) pins.push_back({r.height, r.width});
        j["image_grid_pinpoints"] = pins;
        j["do_pad"] = true;
    }
    j["resample"] = resample;
    j["rescale_factor"] = rescale_factor;
    j["size"] = {{"shortest_edge", shortest_edge}};
    if (mode != "crop") j["dartlens_preprocess"] = mode;
    return j;
}

// --- GenerationConfig -------------------------------------------------------------------------

GenerationConfig GenerationConfig::from_file(const std::string& path) {
    GenerationConfig g;
    {
        std::ifstream probe(path);
        if (!probe) return g;  // optional file
    }
    json j = read_json_file(path);
    if (!j.is_object()) throw Error(str_cat(path, ": top level is not a JSON object"));
    Reader r{j, path, ""};
    g.bos_token_id = r.get_int("bos_token_id", g.bos_token_id);
    g.eos_token_ids = r.get_int_or_list("eos_token_id", g.eos_token_ids);
    g.eos_token_id = g.eos_token_ids[0];
    g.pad_token_id = r.get_int("pad_token_id", g.pad_token_id);
    return g;
}

}  // namespace dl
