// Scaled dot-product attention: the one implementation every layer (CLIP, Llama, pruning) uses,
// and the linear projection around it (linear_layer).
//
// Shapes are per sequence (batch 1): q [H,Sq,D], k/v [Hkv,Sk,D], scale D^-0.5. Grouped-query
// attention: query head h uses kv head h / (H/Hkv), as Hugging Face's repeat_kv does. "Causal"
// means the Sq queries are the LAST Sq positions of the Sk keys: query i sees keys 0..Sk-Sq+i
// (prefill: Sq == Sk; decode: Sq == 1 sees everything; appending a chunk to a cache: between).
// Two paths compute the same function: "fused" and "plain" (matmul + float32 softmax over the
// whole [g*Sq, Sk] score matrix, the way HF's eager attention does it). "fused" is
// at::scaled_dot_product_attention in LibTorch 2.x for prefill (Sq == Sk), decode (Sq == 1) and
// unmasked MHA (CLIP); everywhere else, and always in 1.13 (whose SDPA is an unblocked math
// path), it is a blocked eager attention: 128 query rows at a time, grouped-query heads batched
// without repeating K/V, a causal block multiplying only the keys it can see (~half the work of
// a full score matrix). The pruning methods that need probabilities (FastV) use
// attention_probs_rows / attention_column_mean, which compute them in float32 for only the rows
// asked.
#pragma once

#include <ATen/ATen.h>
#include <cstdint>
#include <vector>

namespace dl {

// x [..., in] @ w[out, in]^T (+ b[out]) -> [..., out] in w's dtype. b may be undefined, or stored
// in float32 while w is f16/bf16 (weights.h keeps biases in float32): it is cast to w's dtype.
at::Tensor linear_layer(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

enum class AttentionImpl { fused, plain };

// The process-wide default: fused, or plain when env DARTLENS_ATTENTION=plain at first use.
AttentionImpl attention_default_impl();
void set_attention_default_impl(AttentionImpl impl);

// q [H,Sq,D], k [Hkv,Sk,D], v [Hkv,Sk,D] (same dtype/device; Sq <= Sk when causal) -> [H,Sq,D].
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal);
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal,
                     AttentionImpl impl);

// Causal attention with a sliding window (Mistral): query i (key index Sk-Sq+i) sees the keys j
// with i - window < j <= i, as HF's sliding_window_overlay (kv_idx > q_idx - window). Computed
// the plain way (float32 softmax) in blocks of query rows over only the keys a block can see.
at::Tensor attention_windowed(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t window);

// Causal softmax probabilities for selected query rows, in float32.
// q_rows [H,R,D] (post-RoPE queries), k [Hkv,S,D] (post-RoPE keys); row_positions[r] in 0..S-1 is
// the key index of query row r: it sees keys 0..row_positions[r]. Returns [H,R,S] float32
// (entries after the row's position are 0).
at::Tensor attention_probs_rows(const at::Tensor& q_rows, const at::Tensor& k,
                                const std::vector<int64_t>& row_positions);

// Mean over heads and over all S query rows of the causal probability matrix P[h,i,j]
// (q_all [H,S,D], k [Hkv,S,D], query i at key index i): out[j] = 1/(H*S) sum_h sum_i P[h,i,j].
// Computed `chunk` rows at a time, so only H*chunk*S floats live at once. Returns [S] float32.
at::Tensor attention_column_mean(const at::Tensor& q_all, const at::Tensor& k, int64_t chunk = 256);

}  // namespace dl
