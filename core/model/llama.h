// The Llama decoder of LLaVA as flat layer functions, plus the per-layer KV cache.
//
// Computes exactly what Hugging Face's LlamaForCausalLM computes (transformers 4.40, eager):
// x += o_proj(attn(rmsnorm(x))); x += down(silu(gate(h)) * up(h)) with h = rmsnorm(x);
// RoPE in rotate_half form (dims [0:D/2] pair with [D/2:D]) with cos/sin taken at each token's
// OWN position id, so a pruned subset of tokens keeps its original positions; GQA; RMSNorm in
// float32 (x.float() * rsqrt(mean(x^2) + eps), cast back, times the weight).
// The cache holds post-RoPE keys and values per layer; layers may hold different lengths (after
// pruning at layer K, layers < K hold S entries and layers >= K hold S'). All tensors are one
// sequence (no batch dimension): x [S,d], keys [Hkv,S,D].
#pragma once

#include <ATen/ATen.h>
#include <atomic>
#include <cstdint>
#include <vector>

#include "core/io/config.h"
#include "core/io/weights.h"

namespace dl {

// Per-layer key/value buffers [Hkv, capacity(l), D] with a filled length per layer. Each layer is
// allocated for what it will hold: after pruning at layer K, layers >= K need only the kept length
// plus the new tokens, so pruning's memory saving is real (peak RSS, CUDA peak memory).
struct KVCache {
    std::vector<at::Tensor> k, v;   // per layer [Hkv, cap[l], D]
    std::vector<int64_t> len;       // per layer filled length
    std::vector<int64_t> cap;       // per layer allocated length

    KVCache() = default;
    // Empty cache for `num_layers` layers of Hkv heads x D, room for `capacity` tokens per layer.
    KVCache(int num_layers, int64_t num_kv_heads, int64_t head_dim, int64_t capacity,
            at::ScalarType dtype, at::Device device);
    // Same, with one capacity per layer (0 allowed: the layer is allocated on first use).
    KVCache(int64_t num_kv_heads, int64_t head_dim, const std::vector<int64_t>& capacities,
            at::ScalarType dtype, at::Device device);
    // Cache shaped for a model's text config (dtype/device of the model's weights).
    static KVCache for_model(const LlavaConfig& config, const LlavaWeights& weights, int64_t capacity);
    static KVCache for_model(const LlavaConfig& config, const LlavaWeights& weights,
                             const std::vector<int64_t>& capacities);

    int num_layers() const { return int(len.size()); }
    bool empty() const { return len.empty(); }
    int64_t capacity(int layer) const;
    // Grows every layer's buffer to hold at least `new_capacity` tokens, keeping the contents.
    void reserve(int64_t new_capacity);
    // Grows one layer's buffer to hold at least `new_capacity` tokens, keeping the contents.
    void reserve_layer(int layer, int64_t new_capacity);
    int64_t length(int layer) const;
    at::Tensor keys(int layer) const;    // [Hkv, length(layer), D] view of the filled part
    at::Tensor values(int layer) const;  // [Hkv, length(layer), D]
    // Appends k_new/v_new [Hkv, n, D] to `layer` (grows that layer by doubling if needed).
    void append(int layer, const at::Tensor& k_new, const at::Tensor& v_new);
    void truncate(int layer, int64_t n);  // keeps the first n entries of `layer`
    void clear();                          // every layer to length 0 (buffers kept)
    KVCache clone() const;                 // deep copy (same capacities)
    // Copies layers [layer_begin, layer_end) (filled parts and lengths) from `other`, which must
    // have the same layer count, heads and head dim; grows this cache's layers when needed.
    void copy_prefix_from(const KVCache& other, int layer_begin, int layer_end);
    int64_t bytes() const;                 // bytes of the FILLED entries (K and V, all layers)
    int64_t allocated_bytes() const;       // bytes of the buffers

private:
    int64_t kv_heads_ = 0, head_dim_ = 0;
    at::TensorOptions options_;
};

// RMSNorm as HF: (x.float() * rsqrt(mean(x^2,-1) + eps)).to(x.dtype) * w, result in x's dtype.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// cos/sin rows [R, D] (dtype, device) for the given positions [R] int64: HF's rotary table
// (inv_freq = 1/theta^(2i/D) in float32, freqs = pos * inv_freq in float32, emb = cat(freqs,
// freqs)). Tables are precomputed up to max_position_embeddings and extended on demand.
// max_position: the largest id in `positions` when the caller knows it (>= 0); then the ids are
// not read back from the device (no host synchronisation on CUDA).
void rope_cos_sin(const TextConfig& config, const at::Tensor& positions, at::ScalarType dtype,
                  at::Device device, at::Tensor& cos, at::Tensor& sin, int64_t max_position = -1);
// x [n_heads, R, D] rotated by cos/sin [R, D]: x*cos + rotate_half(x)*sin.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// One decoder layer. x [S,d] (the new tokens), positions [S] int64 (their position ids). The new
// keys/values are appended to cache layer `layer`; the tokens attend causally to the cached
// prefix plus themselves. Returns the layer output [S,d].
at::Tensor llama_layer(const LlavaWeights& weights, const LlavaConfig& config, int layer,
                       const at::Tensor& x, const at::Tensor& positions, KVCache& cache);

// Runs layers [layer_begin, layer_end) on x [S,d] in place (x becomes the output of the last
// one). position_ids [S] int64 on any device. cancel: checked before each layer (throws
// dl::Cancelled). layer_inputs: if given, x before each layer is pushed onto it.
void run_layers(const LlavaWeights& weights, const LlavaConfig& config, at::Tensor& x,
                const at::Tensor& position_ids, KVCache& cache, int layer_begin, int layer_end,
                const std::atomic<bool>* cancel = nullptr,
                std::vector<at::Tensor>* layer_inputs = nullptr, int64_t max_position = -1);

// Final RMSNorm (model.norm): x [S,d] -> [S,d] in x's dtype.
at::Tensor final_norm(const LlavaWeights& weights, const LlavaConfig& config, const at::Tensor& x);

// lm_head over already-normed rows: x_normed [R,d] -> logits [R,V] float32.
at::Tensor lm_logits(const LlavaWeights& weights, const at::Tensor& x_normed);

// Logits of the last row of a layer-stack output x [S,d]: final_norm + lm_head -> [V] float32.
at::Tensor last_logits(const LlavaWeights& weights, const LlavaConfig& config, const at::Tensor& x);

// Post-RoPE queries of layer `layer` for some of its input rows: x_in_rows [R,d] (that layer's
// input, i.e. the previous layer's output), positions_rows [R] int64 -> [H,R,D]. With the cached
// keys of the same layer this recomputes its attention probabilities for only those rows.
at::Tensor layer_query(const LlavaWeights& weights, const LlavaConfig& config, int layer,
                       const at::Tensor& x_in_rows, const at::Tensor& positions_rows);

}  // namespace dl
