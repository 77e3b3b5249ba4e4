// KVCache bookkeeping (per-layer lengths, growth, views, copies, byte counts) and decoding over a
// pruned cache: after pruning at layer K, decoding with the cache (layers < K hold S entries,
// layers >= K hold S', positions continue at S) must equal recomputing, at every step, the whole
// sequence without a cache (layers < K on all tokens at positions 0.., layers >= K on the kept
// rows plus the generated ones, with their original positions). Tolerance 1e-5 relative.
#include <gtest/gtest.h>

#include <vector>

#include "core/common.h"
#include "core/model/generate.h"
#include "core/model/llama.h"
#include "core/model/llava.h"
#include "core/io/npy.h"
#include "test_util.h"

namespace {

at::Tensor ref_npy(const std::string& name) {
    return dl::npy_load(dltest::reference_dir() + "/npy/" + name + ".npy");
}

double rel_err(const at::Tensor& a, const at::Tensor& b) {
    at::Tensor x = a.to(at::kDouble), y = b.to(at::kDouble);
    return (x - y).abs().max().item<double>() / std::max(y.abs().max().item<double>(), 1e-30);
}

}  // namespace

TEST(KVCache, AppendGrowViewsAndLengths) {
    dl::KVCache c(3, 2, 4, 2, at::kFloat, at::Device(at::kCPU));
    EXPECT_EQ(c.num_layers(), 3);
    EXPECT_EQ(c.length(0), 0);
    at::Tensor k1 = at::randn({2, 3, 4}), v1 = at::randn({2, 3, 4});
    at::Tensor k2 = at::randn({2, 1, 4}), v2 = at::randn({2, 1, 4});
    c.append(0, k1, v1);  // beyond capacity 2: grows
    EXPECT_GE(c.capacity(0), 3);
    EXPECT_EQ(c.capacity(1), 2);  // only the layer that needed room grew
    c.append(0, k2, v2);
    c.append(1, k2, v2);
    EXPECT_EQ(c.length(0), 4);
    EXPECT_EQ(c.length(1), 1);
    EXPECT_EQ(c.length(2), 0);
    EXPECT_TRUE(at::equal(c.keys(0), at::cat({k1, k2}, 1)));
    EXPECT_TRUE(at::equal(c.values(0), at::cat({v1, v2}, 1)));
    EXPECT_TRUE(at::equal(c.keys(1), k2));
    EXPECT_EQ(c.keys(2).size(1), 0);
    EXPECT_EQ(c.bytes(), int64_t(2 * (4 + 1) * 2 * 4 * sizeof(float)));
    EXPECT_GE(c.allocated_bytes(), c.bytes());

    c.reserve(100);  // keeps contents
    EXPECT_EQ(c.capacity(0), 100);
    EXPECT_EQ(c.capacity(2), 100);
    EXPECT_TRUE(at::equal(c.keys(0), at::cat({k1, k2}, 1)));

    c.truncate(0, 2);
    EXPECT_EQ(c.length(0), 2);
    EXPECT_TRUE(at::equal(c.keys(0), k1.narrow(1, 0, 2)));
    c.append(0, k2, v2);  // overwrites the dropped entries
    EXPECT_TRUE(at::equal(c.keys(0), at::cat({k1.narrow(1, 0, 2), k2}, 1)));

    EXPECT_THROW(c.truncate(0, 5), dl::Error);
    EXPECT_THROW(c.length(3), dl::Error);
    EXPECT_THROW(c.append(0, at::randn({3, 1, 4}), at::randn({3, 1, 4})), dl::Error);
    EXPECT_THROW(c.append(0, k2, at::randn({2, 2, 4})), dl::Error);
    EXPECT_THROW(dl::KVCache(0, 2, 4, 2, at::kFloat, at::Device(at::kCPU)), dl::Error);
}

TEST(KVCache, CloneAndCopyPrefix) {
    dl::KVCache a(3, 2, 4, 8, at::kFloat, at::Device(at::kCPU));
    at::Tensor k = at::randn({2, 5, 4}), v = at::randn({2, 5, 4});
    for (int l = 0; l < 3; ++l) a.append(l, k.narrow(1, 0, 5 - l), v.narrow(1, 0, 5 - l));

    dl::KVCache b = a.clone();
    b.append(0, at::zeros({2, 1, 4}), at::zeros({2, 1, 4}));
    EXPECT_EQ(a.length(0), 5);  // independent storage
    EXPECT_EQ(b.length(0), 6);
    b.keys(1).fill_(0);
    EXPECT_TRUE(at::equal(a.keys(1), k.narrow(1, 0, 4)));

    dl::KVCache c;  // empty: takes the geometry of the source
    c.copy_prefix_from(a, 0, 2);
    EXPECT_EQ(c.num_layers(), 3);
    EXPECT_EQ(c.length(0), 5);
    EXPECT_EQ(c.length(1), 4);
    EXPECT_EQ(c.length(2), 0);
    EXPECT_TRUE(at::equal(c.keys(1), a.keys(1)));
    EXPECT_TRUE(at::equal(c.values(0), a.values(0)));

    dl::KVCache small(3, 2, 4, 1, at::kFloat, at::Device(at::kCPU));
    small.copy_prefix_from(a, 0, 3);  // grows to fit
    EXPECT_EQ(small.length(2), 3);
    EXPECT_TRUE(at::equal(small.keys(2), a.keys(2)));

    dl::KVCache two(2, 2, 4, 4, at::kFloat, at::Device(at::kCPU));
    EXPECT_THROW(two.copy_prefix_from(a, 0, 2), dl::Error);
}

TEST(KVCache, PrunedDecodeEqualsRecomputation) {
    dl::LoadOptions o;
    o.device = "cpu";
    o.dtype = "f32";
    o.threads = 1;
    dl::LlavaModel m(dltest::reference_dir(), o);
    const auto& W = m.weights();
    const auto& cfg = m.config();
    const int K = 2, L = cfg.text.num_hidden_layers, steps = 5;
    at::Tensor merged = ref_npy("inputs_embeds_merged")[0];
    const int64_t S = merged.size(0);
    const std::vector<int64_t> keep = {0, 1, 2, 3, 4, 6, 7, 10, 15, 19, 20, 21, 22, 23, 24};
    const int64_t n = int64_t(keep.size());

    // With the cache: trunk (layers < K, all tokens), then pruned layers >= K, then decode.
    dl::KVCache cache = m.new_cache(S + steps);
    at::Tensor x = merged;
    dl::run_layers(W, cfg, x, m.positions_range(0, S), cache, 0, K);
    at::Tensor pos_keep = m.positions(keep);
    x = x.index_select(0, pos_keep);
    dl::run_layers(W, cfg, x, pos_keep, cache, K, L);
    at::Tensor first = dl::last_logits(W, cfg, x);
    dl::GreedyResult cached = dl::decode_greedy(m, cache, first, S, steps, {}, nullptr, true);
    ASSERT_EQ(cached.tokens.size(), size_t(steps));
    EXPECT_EQ(cache.length(0), S + steps - 1);
    EXPECT_EQ(cache.length(K - 1), S + steps - 1);
    EXPECT_EQ(cache.length(K), n + steps - 1);
    EXPECT_EQ(cache.length(L - 1), n + steps - 1);
    EXPECT_EQ(cache.bytes(), 2 * (K * (S + steps - 1) + (L - K) * (n + steps - 1)) * 2 * 16 * 4);

    // Without a cache: recompute everything at each step.
    std::vector<int> tokens;
    for (int t = 0; t < steps; ++t) {
        at::Tensor full = tokens.empty() ? merged : at::cat({merged, m.embed_tokens(tokens)}, 0);
        const int64_t T = full.size(0);
        dl::KVCache fresh = m.new_cache(T);
        at::Tensor y = full;
        dl::run_layers(W, cfg, y, m.positions_range(0, T), fresh, 0, K);
        std::vector<int64_t> rows = keep;
        for (int64_t i = S; i < T; ++i) rows.push_back(i);
        at::Tensor pos_rows = m.positions(rows);
        y = y.index_select(0, pos_rows);
        dl::KVCache fresh2 = m.new_cache(T);
        dl::run_layers(W, cfg, y, pos_rows, fresh2, K, L);
        at::Tensor logits = dl::last_logits(W, cfg, y);
        EXPECT_LT(rel_err(cached.step_logits[t], logits), 1e-5) << "step " << t;
        tokens.push_back(dl::argmax_token(logits));
    }
    EXPECT_EQ(cached.tokens, tokens);

    // Decoding at renumbered positions (S' instead of S) is a different computation.
    dl::KVCache cache_b = m.new_cache(S + steps);
    at::Tensor xb = merged;
    dl::run_layers(W, cfg, xb, m.positions_range(0, S), cache_b, 0, K);
    xb = xb.index_select(0, pos_keep);
    dl::run_layers(W, cfg, xb, pos_keep, cache_b, K, L);
    dl::GreedyResult wrong = dl::decode_greedy(m, cache_b, dl::last_logits(W, cfg, xb), n, steps, {}, nullptr, true);
    EXPECT_GT(rel_err(wrong.step_logits[1], cached.step_logits[1]), 1e-4);
}
