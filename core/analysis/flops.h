// Analytic FLOP and KV-cache byte counts for LLaVA runs with and without token pruning.
//
// Counts multiply-adds as 2 FLOPs. Linear layers: 2*S*in*out. Attention: QK^T and PV over the
// causal triangle, 2 * 2 * H * D * (S*(S+1)/2) for a prefill of S tokens (a fused kernel does
// about this much work), and 2 * 2 * H * D * L for one decoded token attending to L entries.
// Norms, RoPE, softmax and activations are ignored (well under 1% at LLaVA sizes).
#pragma once

#include <cstdint>
#include <vector>

#include "core/io/config.h"

namespace dl {

// FLOPs of the CLIP tower up to the feature layer plus the projector.
double vision_flops(const LlavaConfig& config);
// FLOPs of one decoder layer over `new_tokens` queries attending causally to a cache holding
// `past` earlier entries.
double decoder_layer_flops(const TextConfig& text, int64_t new_tokens, int64_t past);
// LLM prefill FLOPs: layers < K on S tokens, layers >= K on S_after tokens, plus the lm_head on
// the last row. K = num_layers (or S_after == S) means no pruning.
double prefill_flops(const LlavaConfig& config, int64_t seq_len, int layer_k, int64_t seq_len_after);
// FLOPs of decoding one token when layers < K hold `cache_full` entries and layers >= K hold
// `cache_pruned` entries (lm_head included).
double decode_flops_per_token(const LlavaConfig& config, int layer_k, int64_t cache_full,
                              int64_t cache_pruned);
// KV-cache bytes (keys + values) for the given per-layer lengths and element size.
int64_t kv_cache_bytes(const TextConfig& text, const std::vector<int64_t>& lengths, int element_size);
// Weight bytes one decoded token reads: every decoder layer's matrices, biases and norms, the final
// norm, the lm_head and one row of the input embedding, at `element_size` bytes per element. With
// the KV cache's bytes, what a memory-bound decode step has to bring in from memory.
int64_t decode_weight_bytes(const TextConfig& text, int element_size);

}  // namespace dl
