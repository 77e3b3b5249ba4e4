// The LLaVA weights as the forward pass uses them, found under any of the four name layouts.
//
// Layouts (shared/specs/llava-hf.md): A llava-hf Hub (language_model.model.*), B transformers
// >= 4.52 (model.language_model.*), C original LLaVA (model.layers.*, model.mm_projector.0/2), D transformers >= 5 save_pretrained
// (as A, but CLIP without "vision_model.": vision_tower.embeddings.*, vision_tower.encoder.*).
// load_llava_weights resolves each canonical tensor through the detected layout, checks its shape
// against the config, converts it to the compute dtype/device (zero-copy from the memory map when
// dtype and device already match) and reports every missing, unexpected or misshaped tensor by
// name in one dl::Error.
#pragma once

#include <ATen/ATen.h>
#include <string>
#include <vector>

#include "core/io/config.h"

namespace dl {

class WeightStore;

struct ClipLayerWeights {
    at::Tensor ln1_w, ln1_b;                      // [C]
    at::Tensor q_w, q_b, k_w, k_b, v_w, v_b;      // [C,C], [C]
    at::Tensor o_w, o_b;                          // out_proj [C,C], [C]
    at::Tensor ln2_w, ln2_b;                      // [C]
    at::Tensor fc1_w, fc1_b;                      // [I,C], [I]
    at::Tensor fc2_w, fc2_b;                      // [C,I], [C]
};

struct ClipWeights {
    at::Tensor class_embedding;                   // [C]
    at::Tensor patch_embedding;                   // conv [C,3,P,P], no bias
    at::Tensor position_embedding;                // [1+G*G, C]
    at::Tensor pre_ln_w, pre_ln_b;                // pre_layrnorm [C]
    std::vector<ClipLayerWeights> layers;         // only the layers the feature layer needs
    at::Tensor post_ln_w, post_ln_b;              // may be undefined (unused by LLaVA)
};

struct ProjectorWeights {
    at::Tensor l1_w, l1_b;                        // [d, C], [d]  (bias undefined if no bias)
    at::Tensor l2_w, l2_b;                        // [d, d], [d]
};

struct LlamaLayerWeights {
    at::Tensor input_norm;                        // [d]
    at::Tensor q_w, k_w, v_w, o_w;                // [H*D,d], [Hkv*D,d], [Hkv*D,d], [d,H*D]
    at::Tensor q_b, k_b, v_b, o_b;                // undefined unless attention_bias
    at::Tensor post_norm;                         // [d]
    at::Tensor gate_w, up_w, down_w;              // [I,d], [I,d], [d,I]
};

struct LlamaWeights {
    at::Tensor embed_tokens;                      // [V, d]
    std::vector<LlamaLayerWeights> layers;
    at::Tensor norm;                              // [d]
    at::Tensor lm_head;                           // [V, d] (tied: same tensor as embed_tokens)
};

struct LlavaWeights {
    ClipWeights vision;
    ProjectorWeights projector;
    LlamaWeights text;
    at::Tensor image_newline;                     // [d] LLaVA-NeXT only (undefined for LLaVA-1.5)
    std::string layout;                           // "llava-hf" | "transformers>=4.52" | "original-llava" | "transformers>=5"
    std::string stored_dtype;                     // "F32" | "F16" | "BF16" (of the text weights)
    int64_t stored_bytes = 0;                     // tensor bytes in the checkpoint
    int64_t num_parameters = 0;
};

// Number of CLIP layers LLaVA's forward needs for a feature layer (e.g. -2 of 24 -> 23).
int clip_layers_needed(const LlavaConfig& config);

// Loads and validates every tensor. dtype: compute dtype (norm weights are kept in float32).
LlavaWeights load_llava_weights(const WeightStore& store, const LlavaConfig& config,
                                at::ScalarType dtype, at::Device device);

// The canonical (layout A, llava-hf Hub) names of every tensor a config needs, in state_dict order.
std::vector<std::string> canonical_weight_names(const LlavaConfig& config);

}  // namespace dl
