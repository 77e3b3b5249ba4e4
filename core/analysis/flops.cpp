// Analytic FLOP counts (see flops.h for what is counted).
#include "core/analysis/flops.h"

namespace dl {

static double linear_flops(double tokens, double in, double out) { return 2.0 * tokens * in * out; }

double vision_flops(const LlavaConfig& c) {
    const VisionConfig& v = c.vision;
    const double n = double(v.num_patches()) + 1.0;  // + CLS
    const double C = v.hidden_size, I = v.intermediate_size;
    const double patch_in = double(v.num_channels) * v.patch_size * v.patch_size;
    double f = linear_flops(n - 1, patch_in, C);  // patch embedding conv
    int layers = v.num_hidden_layers;
    if (!c.vision_feature_layers.empty() && c.vision_feature_layers[0] < 0)
        layers = v.num_hidden_layers + 1 + c.vision_feature_layers[0];
    else if (!c.vision_feature_layers.empty())
        layers = c.vision_feature_layers[0];
    const double per_layer = linear_flops(n, C, 3 * C) + linear_flops(n, C, C) + 2.0 * 2.0 * n * n * C +
                             linear_flops(n, C, I) + linear_flops(n, I, C);
    f += per_layer * layers;
    const double d = c.text.hidden_size;
    const double N = c.num_image_tokens();
    f += linear_flops(N, C, d) + linear_flops(N, d, d);  // projector
    return f;
}

double decoder_layer_flops(const TextConfig& t, int64_t new_tokens, int64_t past) {
    const double S = double(new_tokens);
    const double d = t.hidden_size, D = t.head_dim(), H = t.num_attention_heads, Hkv = t.num_key_value_heads;
    const double I = t.intermediate_size;
    double f = linear_flops(S, d, H * D) + 2 * linear_flops(S, d, Hkv * D) + linear_flops(S, H * D, d);
    f += 3 * linear_flops(S, d, I);
    // Query i (0-based among the new tokens) attends to past + i + 1 keys.
    const double attended = S * double(past) + S * (S + 1) / 2.0;
    f += 2.0 * 2.0 * H * D * attended;
    return f;
}

double prefill_flops(const LlavaConfig& c, int64_t seq_len, int layer_k, int64_t seq_len_after) {
    const TextConfig& t = c.text;
    double f = 0;
    for (int l = 0; l < t.num_hidden_layers; ++l)
        f += decoder_layer_flops(t, l < layer_k ? seq_len : seq_len_after, 0);
    f += linear_flops(1, t.hidden_size, t.vocab_size);
    return f;
}

double decode_flops_per_token(const LlavaConfig& c, int layer_k, int64_t cache_full, int64_t cache_pruned) {
    const TextConfig& t = c.text;
    double f = 0;
    for (int l = 0; l < t.num_hidden_layers; ++l)
        f += decoder_layer_flops(t, 1, l < layer_k ? cache_full : cache_pruned);
    f += linear_flops(1, t.hidden_size, t.vocab_size);
    return f;
}

int64_t kv_cache_bytes(const TextConfig& t, const std::vector<int64_t>& lengths, int element_size) {
    int64_t total = 0;
    for (int64_t len : lengths) total += 2 * len * int64_t(t.num_key_value_heads) * t.head_dim() * element_size;
    return total;
}

int64_t decode_weight_bytes(const TextConfig& t, int element_size) {
    const int64_t d = t.hidden_size, I = t.intermediate_size;
    const int64_t HD = int64_t(t.num_attention_heads) * t.head_dim(), KV = int64_t(t.num_key_value_heads) * t.head_dim();
    int64_t layer = d * HD + 2 * d * KV + HD * d + 3 * d * I + 2 * d;
    if (t.attention_bias) layer += HD + 2 * KV + d;
    if (t.mlp_bias) layer += 2 * I + d;
    const int64_t elements = int64_t(t.num_hidden_layers) * layer + d + int64_t(t.vocab_size) * d + d;
    return elements * element_size;
}

}  // namespace dl
