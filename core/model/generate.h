// Greedy decoding over a KV cache, and a cache-free reference loop for tests.
//
// decode_greedy picks argmax of the given logits, stops at an EOS id (not included in the
// output) or after max_new_tokens, and feeds token i at position next_position + i. Positions
// continue at the ORIGINAL sequence length even when a pruned cache is shorter (DART/FastV keep
// RoPE positions of the unpruned prompt).
#pragma once

#include <ATen/ATen.h>
#include <atomic>
#include <functional>
#include <vector>

#include "core/model/llama.h"
#include "core/model/llava.h"

namespace dl {

struct GreedyResult {
    std::vector<int> tokens;              // new tokens, EOS excluded
    std::vector<at::Tensor> step_logits;  // [V] float32 logits each token was picked from
    bool stopped_at_eos = false;
};

// first_logits [V]: logits of the last prompt position (already computed by the prefill).
// cache: holds the prompt (every layer); grows by one entry per layer per fed token.
// cancel: checked each step (throws dl::Cancelled). keep_logits: fill step_logits.
// on_token(step, token): called for each emitted token.
GreedyResult decode_greedy(const LlavaModel& model, KVCache& cache, const at::Tensor& first_logits,
                           int64_t next_position, int max_new_tokens, const std::vector<int>& eos_ids,
                           const std::atomic<bool>* cancel = nullptr, bool keep_logits = false,
                           const std::function<void(int step, int token)>& on_token = {});

// Reference loop without a cache: at each step runs the whole sequence (prompt_embeds [S,d]
// followed by the embeddings of the tokens so far, positions 0..len-1) through every layer with
// a fresh cache. Always keeps step_logits.
GreedyResult generate_nocache(const LlavaModel& model, const at::Tensor& prompt_embeds,
                              int max_new_tokens, const std::vector<int>& eos_ids);

// argmax of logits [V] (first index on ties, like torch.argmax).
int argmax_token(const at::Tensor& logits);

}  // namespace dl
