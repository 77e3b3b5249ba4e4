// Greedy decoding loops (see generate.h).
#include "core/model/generate.h"

#include <algorithm>

#include "core/api.h"
#include "core/common.h"

namespace dl {

int argmax_token(const at::Tensor& logits) {
    return int(logits.reshape({-1}).argmax().item<int64_t>());
}

static bool is_eos(int token, const std::vector<int>& eos_ids) {
    return std::find(eos_ids.begin(), eos_ids.end(), token) != eos_ids.end();
}

GreedyResult decode_greedy(const LlavaModel& model, KVCache& cache, const at::Tensor& first_logits,
                           int64_t next_position, int max_new_tokens, const std::vector<int>& eos_ids,
                           const std::atomic<bool>* cancel, bool keep_logits,
                           const std::function<void(int, int)>& on_token) {
    GreedyResult r;
    at::Tensor logits = first_logits;
    for (int step = 0; step < max_new_tokens; ++step) {
        if (cancel && cancel->load()) throw Cancelled();
        // The argmax stays on the device for the next step; reading it is the one host
        // synchronisation per decoded token.
        const at::Tensor token_dev = logits.reshape({-1}).argmax().reshape({1});
        const int token = int(token_dev.item<int64_t>());
        if (keep_logits) r.step_logits.push_back(logits.to(at::kCPU));
        if (is_eos(token, eos_ids)) {
            r.stopped_at_eos = true;
            break;
        }
        r.tokens.push_back(token);
        if (on_token) on_token(step, token);
        if (step + 1 == max_new_tokens) break;  // no logits needed after the last token
        logits = model.step(token_dev, next_position + step, cache, cancel);
    }
    return r;
}

GreedyResult generate_nocache(const LlavaModel& model, const at::Tensor& prompt_embeds,
                              int max_new_tokens, const std::vector<int>& eos_ids) {
    GreedyResult r;
    for (int step = 0; step < max_new_tokens; ++step) {
        at::Tensor x = prompt_embeds;
        if (!r.tokens.empty()) x = at::cat({prompt_embeds, model.embed_tokens(r.tokens)}, 0);
        const int64_t S = x.size(0);
        KVCache cache = model.new_cache(S);
        at::Tensor logits = model.forward_last_logits(x, model.positions_range(0, S), cache);
        const int token = argmax_token(logits);
        r.step_logits.push_back(logits.to(at::kCPU));
        if (is_eos(token, eos_ids)) {
            r.stopped_at_eos = true;
            break;
        }
        r.tokens.push_back(token);
    }
    return r;
}

}  // namespace dl
