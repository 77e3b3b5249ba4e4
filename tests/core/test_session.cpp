// Session-level properties of pruning inside the decoder, checked against independent
// recomputations built from the layer functions (not from the session's caching paths):
// - ratio 0 / every index kept reproduces the unpruned logits and tokens exactly;
// - KV-cache decoding after pruning equals recomputing the pruned sequence at every step;
// - a run from the prefix cache equals a cold run; changing K re-runs correctly;
// - kept sets from the session equal a direct call of the pruner on layer K-1's tensors, and
//   FastV's equal a ranking of attention probabilities recomputed from the raw weights;
// - report.json says which runs' timings were composed from the prefix cache.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>

#include "core/api.h"
#include "core/common.h"
#include "core/model/generate.h"
#include "core/io/image.h"
#include "core/model/llama.h"
#include "core/model/llava.h"
#include "core/model/make_model.h"
#include "core/pruning/pruner.h"
#include "core/analysis/report.h"
#include "core/io/safetensors.h"
#include "test_util.h"

namespace {

std::string tiny_model() {
    static std::string dir;
    if (dir.empty()) {
        dir = dltest::scratch_dir("session-model") + "/tiny";
        dl::make_model("tiny", dir, 7);
    }
    return dir;
}

std::string sample_image() { return dltest::sample_image(); }

struct Fixture : ::testing::Test {
    dl::Session session;
    dl::PromptInfo prompt;
    void SetUp() override {
        dl::LoadOptions lo;
        lo.threads = 2;
        session.load_model(tiny_model(), lo);
        dl::RunRequest req;
        req.image_path = sample_image();
        req.question = "What is in the picture? Describe the colours.";
        prompt = session.prepare(req);
    }
};

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    float m = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

TEST_F(Fixture, PromptSpanFoundFromIds) {
    ASSERT_GT(prompt.image_span_length, 0);
    const dl::ModelInfo& info = session.model_info();
    EXPECT_EQ(prompt.image_span_length, info.num_image_tokens);
    EXPECT_EQ(prompt.sequence_length, int(prompt.prompt_ids.size()) - 1 + prompt.image_span_length);
    int image_id_count = 0;
    for (size_t i = 0; i < prompt.prompt_ids.size(); ++i)
        if (prompt.prompt_ids[i] == prompt.prompt_ids[size_t(prompt.image_span_start)]) ++image_id_count;
    EXPECT_EQ(image_id_count, 1);
}

TEST_F(Fixture, RatioZeroEqualsNoneExactly) {
    dl::PruneConfig none;
    const dl::MethodRun base = session.run(none, 8);
    for (const std::string m : {"dart", "fastv", "random"}) {
        dl::PruneConfig c;
        c.method = m;
        c.ratio = 0.0;
        const dl::MethodRun r = session.run(c, 8);
        EXPECT_EQ(r.pruning.kept_count, r.pruning.num_image_tokens) << m;
        EXPECT_EQ(r.output_ids, base.output_ids) << m;
        EXPECT_EQ(max_abs_diff(r.prompt_logits, base.prompt_logits), 0.0f) << m;
    }
}

TEST_F(Fixture, PruningChangesLogits) {
    dl::PruneConfig none;
    const dl::MethodRun base = session.run(none, 1);
    dl::PruneConfig c;
    c.method = "dart";
    c.keep = 4;
    c.pivots_image = 1;
    c.pivots_text = 1;
    const dl::MethodRun r = session.run(c, 1);
    EXPECT_LT(r.pruning.kept_count, r.pruning.num_image_tokens);
    EXPECT_GT(max_abs_diff(r.prompt_logits, base.prompt_logits), 1e-4f);
    EXPECT_LT(r.kv_cache_bytes, base.kv_cache_bytes);
    EXPECT_LT(r.prefill_flops, base.prefill_flops);
}

TEST_F(Fixture, CachedRunEqualsColdRun) {
    for (const std::string m : {"none", "dart", "fastv"}) {
        for (int k : {1, 2}) {
            dl::PruneConfig c;
            c.method = m;
            c.layer = k;
            c.keep = 6;
            const dl::MethodRun cached = session.run(c, 6, {}, nullptr, true);
            const dl::MethodRun cold = session.run(c, 6, {}, nullptr, false);
            EXPECT_TRUE(cached.from_prefix_cache);
            EXPECT_FALSE(cold.from_prefix_cache);
            EXPECT_EQ(cached.output_ids, cold.output_ids) << m << " K=" << k;
            EXPECT_EQ(cached.pruning.kept_image_indices, cold.pruning.kept_image_indices) << m << " K=" << k;
            EXPECT_LT(max_abs_diff(cached.prompt_logits, cold.prompt_logits), 1e-4f) << m << " K=" << k;
        }
    }
}

TEST_F(Fixture, PreviewMatchesRunSelection) {
    dl::PruneConfig c;
    c.method = "dart";
    c.keep = 8;
    c.pivots_image = 2;
    c.pivots_text = 2;
    const dl::PruningResult p = session.preview(c);
    const dl::MethodRun r = session.run(c, 2);
    EXPECT_EQ(p.kept_image_indices, r.pruning.kept_image_indices);
    EXPECT_EQ(p.pivot_image_indices, r.pruning.pivot_image_indices);
    EXPECT_EQ(int(p.key_l1.size()), p.num_image_tokens);
}

TEST_F(Fixture, BadConfigNamesParameter) {
    dl::PruneConfig c;
    c.method = "dart";
    c.layer = 99;
    try {
        session.run(c, 2);
        FAIL() << "expected an error";
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find("layer"), std::string::npos) << e.what();
    }
    c.layer = 1;
    c.method = "nosuch";
    EXPECT_THROW(session.preview(c), dl::Error);
}

// Independent recomputation of a pruned generation without any KV-cache reuse: at each step the
// whole sequence (prompt + tokens so far) runs through layers < K with positions 0..len-1, the
// kept prompt rows plus every generated row go through layers >= K at their original positions,
// and the next token is the argmax of the last row. Must equal the cached decode token for token.
TEST_F(Fixture, PrunedCacheDecodeEqualsRecompute) {
    c10::InferenceMode guard;
    dl::LoadOptions lo;
    lo.threads = 2;
    dl::LlavaModel model(tiny_model(), lo);
    for (const std::string m : {"dart", "fastv"}) {
        dl::PruneConfig c;
        c.method = m;
        c.layer = 2;
        c.keep = 6;
        const int n_new = 6;
        const dl::MethodRun run = session.run(c, n_new);
        ASSERT_FALSE(run.output_ids.empty());

        cv::Mat rgb = dl::load_image_rgb8(sample_image());
        dl::PreprocessorConfig pre = dl::PreprocessorConfig::from_file(tiny_model() + "/preprocessor_config.json");
        dl::PreprocessedImage img = dl::preprocess_image(rgb, pre, "", model.config().vision.patch_size);
        at::Tensor feats = model.encode_image(img.pixel_values);
        std::vector<int> prompt_ids = prompt.prompt_ids;
        const int s0 = prompt.image_span_start;
        prompt_ids[size_t(s0)] = 0;
        at::Tensor prompt_embeds = model.merge_image(model.embed_tokens(prompt_ids), s0, feats);
        const int64_t S = prompt_embeds.size(0);
        std::vector<int64_t> keep;
        for (int64_t p = 0; p < S; ++p) {
            if (p < s0 || p >= s0 + prompt.image_span_length) keep.push_back(p);
        }
        for (int i : run.pruning.kept_image_indices) keep.push_back(s0 + i);
        std::sort(keep.begin(), keep.end());
        const int L = model.config().text.num_hidden_layers;
        std::vector<int> tokens;
        for (int step = 0; step < int(run.output_ids.size()); ++step) {
            at::Tensor x = prompt_embeds;
            if (!tokens.empty()) x = at::cat({x, model.embed_tokens(tokens)}, 0);
            const int64_t len = x.size(0);
            dl::KVCache cache = model.new_cache(len + 1);
            dl::run_layers(model.weights(), model.config(), x, model.positions_range(0, len), cache, 0, c.layer);
            std::vector<int64_t> rows = keep;
            for (int64_t p = S; p < len; ++p) rows.push_back(p);
            at::Tensor pos = model.positions(rows);
            at::Tensor xk = x.index_select(0, pos);
            dl::run_layers(model.weights(), model.config(), xk, pos, cache, c.layer, L);
            at::Tensor logits = dl::last_logits(model.weights(), model.config(), xk);
            if (step == 0) {
                std::vector<float> l(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
                EXPECT_LT(max_abs_diff(l, run.prompt_logits), 1e-4f) << m;
            }
            tokens.push_back(dl::argmax_token(logits));
        }
        EXPECT_EQ(tokens, run.output_ids) << m;
    }
}

// HF Llama's projection `proj` (q_proj | k_proj) of layer `layer` for rows x [R,d] at positions
// pos[R], post-RoPE, written from the formulas with plain tensor ops in double on the
// checkpoint's raw tensors (not dl::layer_query, not LlavaWeights): RMSNorm
// x / sqrt(mean(x^2) + eps) * w, then proj, then rotate_half RoPE with
// inv_freq_i = theta^(-2i/D): [x1, x2] -> [x1 cos - x2 sin, x2 cos + x1 sin]. -> [heads, R, D].
at::Tensor independent_projection(const dl::TextConfig& tc, int layer, const std::string& proj, const at::Tensor& x_rows,
                                  const std::vector<int64_t>& pos) {
    dl::WeightStore store = dl::WeightStore::open_dir(tiny_model());
    const std::string prefix = "language_model.model.layers." + std::to_string(layer) + ".";
    auto w = [&](const std::string& n) {
        return dl::tensor_from_store(store, prefix + n, at::kFloat, at::Device(at::kCPU)).to(at::kDouble);
    };
    const int64_t R = x_rows.size(0), D = tc.head_dim(), half = D / 2;
    at::Tensor x = x_rows.to(at::kCPU, at::kDouble);
    at::Tensor h = x / at::sqrt(x.pow(2).mean(-1, true) + tc.rms_norm_eps) * w("input_layernorm.weight");
    at::Tensor y = at::matmul(h, w("self_attn." + proj + ".weight").t());  // [R, heads*D]
    if (store.has(prefix + "self_attn." + proj + ".bias")) y = y + w("self_attn." + proj + ".bias");
    const int64_t heads = y.size(1) / D;
    y = y.reshape({R, heads, D}).transpose(0, 1);  // [heads, R, D]
    at::Tensor inv_freq = at::pow(tc.rope_theta, at::arange(half, at::kDouble) * (-2.0 / double(D)));  // [D/2]
    at::Tensor angle = at::outer(at::tensor(pos, at::kLong).to(at::kDouble), inv_freq);               // [R, D/2]
    at::Tensor c = angle.cos(), sn = angle.sin();
    at::Tensor y1 = y.narrow(-1, 0, half), y2 = y.narrow(-1, half, half);
    return at::cat({y1 * c - y2 * sn, y2 * c + y1 * sn}, -1);
}

// The session's kept set equals the pruner applied directly to layer K-1's tensors computed here
// from scratch (unpruned run of layers < K); FastV's kept set also equals a ranking of attention
// probabilities computed here from the raw weights (last query and keys of layer K-1).
TEST_F(Fixture, SessionSelectionEqualsDirectPrunerCall) {
    c10::InferenceMode guard;
    dl::LoadOptions lo;
    lo.threads = 2;
    dl::LlavaModel model(tiny_model(), lo);
    const dl::TextConfig& tc = model.config().text;
    cv::Mat rgb = dl::load_image_rgb8(sample_image());
    dl::PreprocessorConfig pre = dl::PreprocessorConfig::from_file(tiny_model() + "/preprocessor_config.json");
    dl::PreprocessedImage img = dl::preprocess_image(rgb, pre, "", model.config().vision.patch_size);
    std::vector<int> prompt_ids = prompt.prompt_ids;
    const int s0 = prompt.image_span_start, N = prompt.image_span_length;
    prompt_ids[size_t(s0)] = 0;
    at::Tensor x = model.merge_image(model.embed_tokens(prompt_ids), s0, model.encode_image(img.pixel_values));
    const int64_t S = x.size(0);
    const int K = 2;
    dl::KVCache cache = model.new_cache(S);
    std::vector<at::Tensor> inputs;
    dl::run_layers(model.weights(), model.config(), x, model.positions_range(0, S), cache, 0, K, nullptr, &inputs);
    dl::PruneInputs in;
    in.image_start = s0;
    in.num_image = N;
    in.seq_len = int(S);
    at::Tensor k = cache.keys(K - 1), v = cache.values(K - 1);
    in.keys = k.permute({1, 0, 2}).reshape({S, -1}).to(at::kFloat);
    in.values = v.permute({1, 0, 2}).reshape({S, -1}).to(at::kFloat);
    in.kv_repeat = tc.num_attention_heads / tc.num_key_value_heads;
    in.hidden_normed = dl::final_norm(model.weights(), model.config(), x).to(at::kFloat);

    // FastV's score, independently: softmax over keys of q_last . k / sqrt(D), mean over heads,
    // with q_last and the keys recomputed from layer K-1's input and the raw weights.
    std::vector<int64_t> all_pos(static_cast<size_t>(S));
    for (int64_t p = 0; p < S; ++p) all_pos[size_t(p)] = p;
    const at::Tensor x_in = inputs[K - 1];
    at::Tensor q = independent_projection(tc, K - 1, "q_proj", x_in.slice(0, S - 1, S), {S - 1});  // [H,1,D]
    at::Tensor kk = independent_projection(tc, K - 1, "k_proj", x_in, all_pos);                     // [Hkv,S,D]
    const int64_t H = q.size(0), D = q.size(2), rep = in.kv_repeat;
    ASSERT_EQ(H, tc.num_attention_heads);
    // the keys the session reads from its cache are these (float32 rounding only)
    EXPECT_LT((kk - k.to(at::kDouble)).abs().max().item<double>(), 1e-4 * kk.abs().max().item<double>());
    at::Tensor scores = at::matmul(q, kk.repeat_interleave(rep, 0).transpose(1, 2)) / std::sqrt(double(D));  // [H,1,S]
    at::Tensor probs = at::softmax(scores, -1).mean(0).reshape({-1});  // [S] double
    in.attn_last = probs.to(at::kFloat);
    // top-5 image tokens by that score (ties to the lower index), by hand
    const int budget = 5;
    std::vector<double> image_score(static_cast<size_t>(N));
    for (int i = 0; i < N; ++i) image_score[size_t(i)] = probs[s0 + i].item<double>();
    std::vector<int> order(static_cast<size_t>(N));
    for (int i = 0; i < N; ++i) order[size_t(i)] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return image_score[size_t(a)] > image_score[size_t(b)]; });
    // the ranking must be decided by more than float32 rounding for the comparison to mean anything
    ASSERT_GT(image_score[size_t(order[budget - 1])] - image_score[size_t(order[budget])],
              1e-5 * image_score[size_t(order[0])]);
    std::vector<int> fastv_expected(order.begin(), order.begin() + budget);
    std::sort(fastv_expected.begin(), fastv_expected.end());

    struct Case {
        std::string method, criterion;
    };
    // dart's criteria exercise each optional input the session supplies (Pruner::needs)
    for (const Case& t : {Case{"dart", "k-norm-max"}, Case{"dart", "v-norm-max"}, Case{"dart", "attn-max"},
                          Case{"fastv", "k-norm-max"}}) {
        dl::PruneConfig c;
        c.method = t.method;
        c.pivot_criterion = t.criterion;
        c.layer = K;
        c.keep = budget;
        const dl::Selection sel = dl::make_pruner(t.method)->select(in, c);
        const dl::PruningResult p = session.preview(c);
        EXPECT_EQ(sel.result.kept_image_indices, p.kept_image_indices) << t.method << " " << t.criterion;
        EXPECT_EQ(sel.result.pivot_image_indices, p.pivot_image_indices) << t.method << " " << t.criterion;
        if (t.method == "fastv") EXPECT_EQ(p.kept_image_indices, fastv_expected);
    }
}

// report.json says whether a run's timings were composed from the prefix cache or measured.
TEST_F(Fixture, ReportSaysWhetherTimingsWereComposed) {
    dl::PruneConfig c;
    c.method = "dart";
    c.keep = 6;
    const std::vector<dl::MethodRun> runs = {session.run(c, 2, {}, nullptr, true),
                                             session.run(c, 2, {}, nullptr, false)};
    const nlohmann::json j =
        nlohmann::json::parse(dl::report_json(session.model_info(), prompt, session.geometry(), runs, "q"));
    ASSERT_EQ(j["runs"].size(), 2u);
    EXPECT_TRUE(j["runs"][0]["from_prefix_cache"].get<bool>());
    EXPECT_FALSE(j["runs"][1]["from_prefix_cache"].get<bool>());
}

// Records the progress reports and sets the cancel flag at the nth report of `stage` (1-based):
// the cancel then lands inside that stage, at its next tensor, layer or token boundary.
struct CancelAt {
    std::string stage;
    int nth = 0;
    std::atomic<bool> flag{false};
    std::map<std::string, int> reports;
    std::vector<double> fractions;
    dl::ProgressFn fn() {
        return [this](double f, const std::string& s) {
            fractions.push_back(f);
            if (++reports[s] == nth && s == stage) flag = true;
        };
    }
};

TEST_F(Fixture, CancelDuringDecodeReturnsTheTokensSoFar) {
    for (const std::string m : {"none", "dart"}) {
        dl::PruneConfig c;
        c.method = m;
        c.keep = 6;
        const dl::MethodRun full = session.run(c, 8);
        ASSERT_GE(full.output_ids.size(), 4u) << m;
        EXPECT_FALSE(full.cancelled);
        CancelAt at{"decode", 3};
        const dl::MethodRun part = session.run(c, 8, at.fn(), &at.flag);
        EXPECT_TRUE(part.cancelled) << m;
        ASSERT_EQ(part.output_ids.size(), 3u) << m;
        EXPECT_EQ(part.output_ids, std::vector<int>(full.output_ids.begin(), full.output_ids.begin() + 3)) << m;
        EXPECT_FALSE(part.text.empty()) << m;
        EXPECT_EQ(part.pruning.kept_image_indices, full.pruning.kept_image_indices) << m;
        EXPECT_GT(part.timing_ms.decode, 0);
        // the prefix cache is intact: the next run gives the whole answer again
        const dl::MethodRun again = session.run(c, 8);
        EXPECT_FALSE(again.cancelled);
        EXPECT_EQ(again.output_ids, full.output_ids) << m;
    }
}

TEST_F(Fixture, CancelBuildingTheTrunkThrowsAndLeavesNoTrunk) {
    dl::RunRequest req;
    req.image_path = sample_image();
    req.question = "Which colours are there?";  // a new question: the next preview builds the trunk
    session.prepare(req);
    dl::PruneConfig c;
    c.method = "dart";
    c.keep = 5;
    CancelAt at{"prefill", 2};
    EXPECT_THROW(session.preview(c, at.fn(), &at.flag), dl::Cancelled);
    EXPECT_EQ(at.reports["prefill"], 2);  // per layer: stopped before the second of three
    CancelAt all;
    const dl::PruningResult p = session.preview(c, all.fn());
    EXPECT_EQ(all.reports["prefill"], session.model_info().num_layers + 1);
    const dl::MethodRun r = session.run(c, 2);
    EXPECT_FALSE(r.cancelled);
    EXPECT_EQ(p.kept_image_indices, r.pruning.kept_image_indices);
}

// Loading (per tensor, then per warm-up layer) and the vision tower (per layer) stop at a cancel;
// a cancelled load keeps the model loaded before, and the session runs normally afterwards.
TEST(SessionCancel, LoadAndVisionStopAndTheSessionRecovers) {
    dl::Session s;
    dl::LoadOptions lo;
    lo.threads = 2;
    {
        CancelAt at{"weights", 5};
        EXPECT_THROW(s.load_model(tiny_model(), lo, at.fn(), &at.flag), dl::Cancelled);
        EXPECT_EQ(at.reports["weights"], 5);
        EXPECT_FALSE(s.has_model());
    }
    CancelAt all;
    s.load_model(tiny_model(), lo, all.fn());
    EXPECT_GT(all.reports["weights"], 40);  // one report per tensor
    EXPECT_EQ(all.reports["warm-up"], s.model_info().num_layers + 1);
    EXPECT_TRUE(std::is_sorted(all.fractions.begin(), all.fractions.end()));
    EXPECT_EQ(all.fractions.back(), 1.0);
    {
        CancelAt at{"warm-up", 2};
        EXPECT_THROW(s.load_model(tiny_model(), lo, at.fn(), &at.flag), dl::Cancelled);
        EXPECT_TRUE(s.has_model());  // the model loaded before stays
    }
    dl::RunRequest req;
    req.image_path = sample_image();
    req.question = "What is in the picture?";
    {
        CancelAt at{"vision", 1};
        EXPECT_THROW(s.prepare(req, at.fn(), &at.flag), dl::Cancelled);
        EXPECT_EQ(at.reports["vision"], 1);
    }
    CancelAt vision;
    s.prepare(req, vision.fn());
    EXPECT_GE(vision.reports["vision"], 2);  // before the first layer and after each
    const dl::MethodRun r = s.run(dl::PruneConfig{}, 4);
    EXPECT_FALSE(r.cancelled);
    EXPECT_FALSE(r.output_ids.empty());
}

}  // namespace

// Each KV-cache layer is allocated for what it will hold, so pruning's memory saving is real:
// layers < K hold the S prompt tokens, layers >= K the kept ones, each plus the new tokens (and
// one spare row). Expected bytes from the model's geometry, independently of the session.
TEST_F(Fixture, KvCacheAllocatedPerLayerForWhatItHolds) {
    const dl::ModelInfo& info = session.model_info();
    const int64_t head_dim = info.hidden_size / info.num_heads;
    const int64_t row = 2 * int64_t(info.num_kv_heads) * head_dim * int64_t(sizeof(float));  // K and V, f32
    const int n = 3, L = info.num_layers, S = prompt.sequence_length;
    for (bool cached : {true, false}) {
        dl::PruneConfig none;
        dl::MethodRun full = session.run(none, n, {}, nullptr, cached);
        EXPECT_EQ(full.kv_cache_allocated_bytes, row * L * (S + n + 1)) << "cached " << cached;
        for (const char* method : {"dart", "fastv", "random"}) {
            dl::PruneConfig c;
            c.method = method;
            c.layer = 1;
            c.keep = 4;
            dl::MethodRun r = session.run(c, n, {}, nullptr, cached);
            const int64_t kept = S - r.pruning.num_image_tokens + r.pruning.kept_count;
            EXPECT_EQ(r.kv_cache_allocated_bytes, row * (1 * (S + n + 1) + (L - 1) * (kept + n + 1)))
                << method << " cached " << cached;
            EXPECT_LT(r.kv_cache_allocated_bytes, full.kv_cache_allocated_bytes) << method;
        }
    }
}
