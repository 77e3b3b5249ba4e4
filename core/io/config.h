// Model configuration as Hugging Face defines it, with the defaults config.json omits filled in.
//
// config.json from `save_pretrained` only holds values that differ from the defaults:
// vision_config is diffed against LlavaConfig's CLIP-L/336, text_config against LlamaConfig().
// from_json fills every omitted key with exactly those defaults (see shared/specs/llava-hf.md).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dl {

struct VisionConfig {
    int hidden_size = 1024;
    int intermediate_size = 4096;
    int num_hidden_layers = 24;
    int num_attention_heads = 16;
    int num_channels = 3;
    int image_size = 336;
    int patch_size = 14;
    int projection_dim = 768;
    double layer_norm_eps = 1e-5;
    std::string hidden_act = "quick_gelu";
    int num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
    int grid() const { return image_size / patch_size; }
    int head_dim() const { return hidden_size / num_attention_heads; }
};

struct TextConfig {
    std::string model_type = "llama";  // "llama" | "mistral" (defaults below are LlamaConfig's;
                                       // a mistral text_config starts from MistralConfig's)
    int vocab_size = 32000;
    int hidden_size = 4096;
    int intermediate_size = 11008;
    int num_hidden_layers = 32;
    int num_attention_heads = 32;
    int num_key_value_heads = 32;      // defaults to num_attention_heads when omitted
    int max_position_embeddings = 2048;
    double rms_norm_eps = 1e-6;
    double rope_theta = 10000.0;
    std::string hidden_act = "silu";
    bool attention_bias = false;
    bool mlp_bias = false;
    bool tie_word_embeddings = false;
    int head_dim_override = 0;         // "head_dim" key if present (newer configs), else 0
    int sliding_window = 0;            // mistral: a query sees the last sliding_window keys
                                       // (itself included); 0 = unlimited (llama, or null)
    int bos_token_id = 1, eos_token_id = 2, pad_token_id = -1;
    int head_dim() const { return head_dim_override > 0 ? head_dim_override : hidden_size / num_attention_heads; }
};

// An image resolution of LLaVA-NeXT's image_grid_pinpoints, in pixels.
struct Resolution {
    int height = 0, width = 0;
    bool operator==(const Resolution& o) const { return height == o.height && width == o.width; }
};

// LlavaNextConfig's default image_grid_pinpoints.
std::vector<Resolution> default_grid_pinpoints();

struct LlavaConfig {
    // "llava" (LlavaForConditionalGeneration) | "llava_next" (LlavaNextForConditionalGeneration:
    // anyres tiles, image_newline; see core/model/next.h)
    std::string model_type = "llava";
    std::vector<Resolution> image_grid_pinpoints;  // llava_next only
    VisionConfig vision;
    TextConfig text;
    int image_token_index = 32000;
    int pad_token_id = -1;
    std::string projector_hidden_act = "gelu";
    bool multimodal_projector_bias = true;
    std::vector<int> vision_feature_layers = {-2};  // a list in newer configs; we support one
    std::string vision_feature_select_strategy = "default";  // default (drop CLS) | full
    int image_seq_length = 576;
    bool random_weights = false;       // "dartlens_random_weights": true, written by make-model
    std::string name_or_path;
    std::string torch_dtype = "float32";  // "torch_dtype" as written (float32 | float16 | bfloat16)

    // Parses config.json text; throws dl::Error naming `source` and the bad key.
    static LlavaConfig from_json(const nlohmann::json& j, const std::string& source);
    static LlavaConfig from_file(const std::string& path);
    // The JSON Hugging Face's save_pretrained would write (only non-default values), plus ours.
    nlohmann::json to_hf_json() const;
    // Number of image tokens after feature selection (N) of one vision-tower pass; LLaVA-NeXT's
    // image span depends on the image (next_image_token_count in core/model/next.h).
    int num_image_tokens() const;
    bool is_next() const { return model_type == "llava_next"; }
};

// preprocessor_config.json (CLIPImageProcessor).
struct PreprocessorConfig {
    int shortest_edge = 336;
    int crop_height = 336, crop_width = 336;
    bool do_resize = true, do_center_crop = true, do_normalize = true, do_rescale = true;
    bool do_convert_rgb = true;
    double rescale_factor = 1.0 / 255.0;
    std::vector<double> image_mean = {0.48145466, 0.4578275, 0.40821073};
    std::vector<double> image_std = {0.26862954, 0.26130258, 0.27577711};
    int resample = 3;                  // PIL code; 3 = bicubic
    // "crop" (llava-hf processor default) or "pad" (original LLaVA-1.5 pad-to-square). Taken from
    // a "dartlens_preprocess" / "image_aspect_ratio" key when present, else "crop".
    std::string mode = "crop";
    // LlavaNextImageProcessor: "image_processor_type" says so; its own image_grid_pinpoints
    // (default: LlavaNextImageProcessor's) and do_pad.
    bool next = false;
    std::vector<Resolution> image_grid_pinpoints;

    static PreprocessorConfig from_file(const std::string& path);
    static PreprocessorConfig from_json(const nlohmann::json& j, const std::string& source);
    nlohmann::json to_json() const;
};

struct GenerationConfig {
    int bos_token_id = 1, eos_token_id = 2, pad_token_id = -1;
    std::vector<int> eos_token_ids = {2};  // generation_config may list several
    static GenerationConfig from_file(const std::string& path);  // missing file -> defaults
};

}  // namespace dl
