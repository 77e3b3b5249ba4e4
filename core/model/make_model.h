// `dartlens-cli make-model`: writes a random-weight LLaVA-1.5 in the exact llava-hf layout.
//
// The output directory looks like a llava-hf Hub checkpoint: config.json (as save_pretrained
// writes it, plus "dartlens_random_weights": true), model.safetensors in layout A
// (vision_tower.vision_model.*, multi_modal_projector.*, language_model.model.*,
// language_model.lm_head.weight), a SentencePiece tokenizer.model trained with Debian's
// `spm_train` on an embedded English corpus about pictures (so generated ids decode to words),
// tokenizer_config.json, special_tokens_map.json, added_tokens.json, preprocessor_config.json,
// generation_config.json and a README.md. As in llava-hf, "<image>" and "<pad>" come right after
// the SentencePiece vocabulary (image = sp_vocab, pad = sp_vocab + 1); embedding rows beyond
// them are padding, like llava-hf's 32002 -> 32064. Weights are drawn from a seeded CPU
// at::Generator: same preset + seed -> byte-identical files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dl {

struct MakeModelPreset {
    std::string name;
    std::string description;
    // CLIP vision tower
    int image_size = 336, patch_size = 14;
    int vision_hidden = 1024, vision_intermediate = 4096, vision_layers = 24, vision_heads = 16;
    int projection_dim = 768;
    // Llama text model
    int text_vocab = 32064;            // embedding rows; the tokenizer gets text_vocab - 2 pieces at most
    int text_hidden = 4096, text_intermediate = 11008, text_layers = 32, text_heads = 32, text_kv_heads = 32;
    int max_positions = 4096;
    double rms_norm_eps = 1e-5;
    std::string dtype = "F32";         // stored dtype of model.safetensors: "F32" | "F16" | "BF16"
    // LLaVA-NeXT (LlavaNextForConditionalGeneration, anyres): the grid pinpoints as multiples of
    // image_size, {rows, cols} tiles (empty: LLaVA-1.5); the decoder's model_type and window.
    std::vector<std::pair<int, int>> next_tiles;
    std::string text_model_type = "llama";  // "llama" | "mistral"
    int sliding_window = 0;                 // mistral only; 0 = null
};

// "tiny", "llava-geom-small", "llava-geom-medium".
std::vector<std::string> make_model_preset_names();
// The preset by name; dl::Error listing the valid names when unknown.
MakeModelPreset make_model_preset(const std::string& name);

// Writes the model into out_dir (created; it must not exist or be an empty directory). Writes to
// a temporary sibling directory and renames it into place, so a failure leaves nothing behind.
// Needs `spm_train` on PATH (dl::Error saying `apt-get install sentencepiece` otherwise).
void make_model(const std::string& preset, const std::string& out_dir, uint64_t seed);

// The embedded English training corpus for the tokenizer (deterministic, one sentence a line).
std::string make_model_corpus();

}  // namespace dl
