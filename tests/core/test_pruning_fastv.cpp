// Tests of the FastV, random and none methods (core/pruning/fastv.cpp, random.cpp, none.cpp) and
// of the registry: FastV against a direct top-k written here (sort of (score, index) pairs),
// budgets from keep and from ratio (round(N * (1 - R))), tie order, the last/mean switch, and
// the random baseline's determinism and spread.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/common.h"
#include "core/pruning/pruner.h"

namespace {

struct fastv_case {
    int s0 = 0, n = 0, t = 0;
    std::vector<float> attn_last, attn_mean;  // [S]
    int seq() const { return s0 + n + t; }
};

fastv_case random_fastv(std::mt19937& rng, int s0, int n, int t) {
    fastv_case k;
    k.s0 = s0; k.n = n; k.t = t;
    std::uniform_real_distribution<float> u(0.f, 1.f);
    for (int i = 0; i < k.seq(); i++) {
        k.attn_last.push_back(u(rng) / float(k.seq()));
        k.attn_mean.push_back(u(rng) / float(k.seq()));
    }
    return k;
}

dl::PruneInputs inputs_of(const fastv_case& k) {
    dl::PruneInputs in;
    in.image_start = k.s0;
    in.num_image = k.n;
    in.seq_len = k.seq();
    in.attn_last = at::from_blob(const_cast<float*>(k.attn_last.data()), {k.seq()}, at::kFloat).clone();
    in.attn_mean = at::from_blob(const_cast<float*>(k.attn_mean.data()), {k.seq()}, at::kFloat).clone();
    return in;
}

// The b image tokens with the highest score, ties to the lower index, sorted ascending.
std::vector<int> direct_topk(const std::vector<float>& attn, int s0, int n, int b) {
    std::vector<std::pair<float, int>> v;
    for (int i = 0; i < n; i++) v.push_back({-attn[size_t(s0 + i)], i});
    std::sort(v.begin(), v.end());
    std::vector<int> out;
    for (int i = 0; i < std::min(b, n); i++) out.push_back(v[size_t(i)].second);
    std::sort(out.begin(), out.end());
    return out;
}

TEST(FastV, MatchesDirectTopK) {
    std::mt19937 rng(3);
    auto pruner = dl::make_pruner("fastv");
    for (int iter = 0; iter < 100; iter++) {
        const int n = 1 + int(rng() % 600);
        const fastv_case k = random_fastv(rng, int(rng() % 50), n, int(rng() % 50));
        dl::PruneConfig c;
        c.method = "fastv";
        c.keep = int(rng() % uint32_t(n + 3));
        const bool mean = rng() % 3 == 0;
        if (mean) c.fastv_score = "mean";
        const dl::Selection sel = pruner->select(inputs_of(k), c);
        const std::vector<float>& attn = mean ? k.attn_mean : k.attn_last;
        const int b = std::min(c.keep, n);
        EXPECT_EQ(sel.result.kept_image_indices, direct_topk(attn, k.s0, n, b)) << "iter " << iter;
        EXPECT_EQ(sel.result.kept_count, b);
        EXPECT_EQ(sel.result.budget, b);
        EXPECT_EQ(sel.keep.size(), size_t(k.s0 + k.t + b));
        EXPECT_TRUE(std::is_sorted(sel.keep.begin(), sel.keep.end()));
        ASSERT_EQ(sel.result.fastv_score.size(), size_t(n));
        for (int i = 0; i < n; i++) EXPECT_EQ(sel.result.fastv_score[size_t(i)], attn[size_t(k.s0 + i)]);
        EXPECT_EQ(sel.result.method, "fastv");
    }
}

TEST(FastV, RatioBudgets) {
    std::mt19937 rng(4);
    const fastv_case k = random_fastv(rng, 35, 576, 40);
    auto pruner = dl::make_pruner("fastv");
    const double ratios[] = {0.0, 0.25, 0.5, 0.75, 0.875, 1.0, 0.778};
    const int kept[] = {576, 432, 288, 144, 72, 0, 128};  // round(576 * (1 - R))
    for (int i = 0; i < 7; i++) {
        dl::PruneConfig c;
        c.method = "fastv";
        c.ratio = ratios[i];
        const dl::Selection sel = pruner->select(inputs_of(k), c);
        EXPECT_EQ(sel.result.kept_count, kept[i]) << "ratio " << ratios[i];
        EXPECT_EQ(sel.result.kept_image_indices, direct_topk(k.attn_last, 35, 576, kept[i]));
    }
}

TEST(FastV, TiesGoToLowerIndex) {
    fastv_case k;
    k.s0 = 2; k.n = 6; k.t = 1;
    k.attn_last = {9, 9, 0.5f, 0.5f, 0.9f, 0.5f, 0.5f, 0.1f, 9};
    k.attn_mean = k.attn_last;
    dl::PruneConfig c;
    c.method = "fastv";
    c.keep = 3;  // 0.9 at rel 2, then the 0.5s at rel 0 and 1
    const dl::Selection sel = dl::make_pruner("fastv")->select(inputs_of(k), c);
    EXPECT_EQ(sel.result.kept_image_indices, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(sel.keep, (std::vector<int64_t>{0, 1, 2, 3, 4, 8}));
}

TEST(FastV, NeedsAndMissingAttention) {
    auto pruner = dl::make_pruner("fastv");
    dl::PruneConfig c;
    c.method = "fastv";
    c.keep = 4;
    EXPECT_TRUE(pruner->needs(c).attn_last);
    EXPECT_FALSE(pruner->needs(c).attn_mean);
    EXPECT_FALSE(pruner->needs(c).values);
    EXPECT_FALSE(pruner->needs(c).hidden_normed);
    c.fastv_score = "mean";
    EXPECT_FALSE(pruner->needs(c).attn_last);
    EXPECT_TRUE(pruner->needs(c).attn_mean);
    std::mt19937 rng(5);
    dl::PruneInputs in = inputs_of(random_fastv(rng, 3, 20, 3));
    in.attn_mean = at::Tensor();
    EXPECT_THROW(pruner->select(in, c), dl::Error);
    in = inputs_of(random_fastv(rng, 3, 20, 3));
    in.attn_last = at::zeros({7});
    c.fastv_score = "last";
    EXPECT_THROW(pruner->select(in, c), dl::Error);  // wrong length
}

TEST(Random, SeededUniformChoice) {
    auto pruner = dl::make_pruner("random");
    dl::PruneInputs in;
    in.image_start = 10;
    in.num_image = 50;
    in.seq_len = 70;
    dl::PruneConfig c;
    c.method = "random";
    c.keep = 12;
    c.seed = 42;
    const dl::Selection a = pruner->select(in, c);
    const dl::Selection b = pruner->select(in, c);
    EXPECT_EQ(a.result.kept_image_indices, b.result.kept_image_indices);
    EXPECT_EQ(a.result.kept_count, 12);
    EXPECT_EQ(a.keep.size(), size_t(20 + 12));
    std::set<int> distinct(a.result.kept_image_indices.begin(), a.result.kept_image_indices.end());
    EXPECT_EQ(distinct.size(), 12u);
    EXPECT_TRUE(std::is_sorted(a.result.kept_image_indices.begin(), a.result.kept_image_indices.end()));
    for (int i : distinct) {
        EXPECT_GE(i, 0);
        EXPECT_LT(i, 50);
    }
    // spread: over 2000 seeds each token is kept about 2000 * 12/50 = 480 times
    std::vector<int> hits(50, 0);
    int differs = 0;
    for (uint64_t s = 0; s < 2000; s++) {
        c.seed = s;
        const dl::Selection r = pruner->select(in, c);
        for (int i : r.result.kept_image_indices) hits[size_t(i)]++;
        differs += r.result.kept_image_indices != a.result.kept_image_indices;
    }
    EXPECT_GE(differs, 1990);
    for (int h : hits) {
        EXPECT_GT(h, 380);
        EXPECT_LT(h, 580);
    }
    // ratio budget as FastV's
    c.keep = -1;
    c.ratio = 0.5;
    EXPECT_EQ(pruner->select(in, c).result.kept_count, 25);
    c.ratio = 0;
    EXPECT_EQ(pruner->select(in, c).result.kept_count, 50);
}

TEST(None, KeepsEverything) {
    auto pruner = dl::make_pruner("none");
    dl::PruneInputs in;
    in.image_start = 3;
    in.num_image = 5;
    in.seq_len = 10;
    in.keys = at::ones({10, 4});
    dl::PruneConfig c;
    const dl::Selection sel = pruner->select(in, c);
    EXPECT_EQ(sel.keep, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    EXPECT_EQ(sel.result.kept_count, 5);
    EXPECT_EQ(sel.result.kept_image_indices, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(sel.result.key_l1, (std::vector<float>(5, 4.f)));
    const dl::PruneNeeds n = pruner->needs(c);
    EXPECT_FALSE(n.values || n.hidden_normed || n.attn_last || n.attn_mean);
    c.method = "random";
    const dl::PruneNeeds r = dl::make_pruner("random")->needs(c);
    EXPECT_FALSE(r.values || r.hidden_normed || r.attn_last || r.attn_mean);
}

TEST(Registry, NamesAndErrors) {
    for (const std::string& name : dl::pruner_names()) EXPECT_EQ(dl::make_pruner(name)->name(), name);
    try {
        dl::make_pruner("sparsevlm");
        FAIL() << "no error";
    } catch (const dl::Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("sparsevlm"), std::string::npos);
        EXPECT_NE(msg.find("none|dart|fastv|random"), std::string::npos);
    }
}

}  // namespace
