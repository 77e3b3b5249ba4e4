// Attention against a naive per-element loop written from the formula (double precision):
// out[h,i,:] = sum_j softmax_j(q[h,i].k[g(h),j] / sqrt(D), j <= Sk-Sq+i if causal) v[g(h),j],
// g(h) = h / (H/Hkv). Both the fused and the plain path, GQA, causal with Sq < Sk, decode
// (Sq = 1), and the probability helpers FastV uses. Tolerance: 1e-5 absolute in float32.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/model/attention.h"
#include "core/common.h"

namespace {

struct Naive {
    std::vector<double> out;    // [H,Sq,D]
    std::vector<double> probs;  // [H,Sq,Sk]
};

// kv_head_of(h) lets a test check that a wrong GQA mapping is detected.
Naive naive_attention(const at::Tensor& q_, const at::Tensor& k_, const at::Tensor& v_, bool causal,
                      bool wrong_gqa = false) {
    at::Tensor q = q_.to(at::kDouble).contiguous(), k = k_.to(at::kDouble).contiguous(),
               v = v_.to(at::kDouble).contiguous();
    const int64_t H = q.size(0), Sq = q.size(1), D = q.size(2), Hkv = k.size(0), Sk = k.size(1);
    const int64_t group = H / Hkv;
    const double* Q = q.data_ptr<double>();
    const double* K = k.data_ptr<double>();
    const double* V = v.data_ptr<double>();
    Naive r;
    r.out.assign(H * Sq * D, 0.0);
    r.probs.assign(H * Sq * Sk, 0.0);
    for (int64_t h = 0; h < H; ++h) {
        const int64_t kh = wrong_gqa ? h % Hkv : h / group;
        for (int64_t i = 0; i < Sq; ++i) {
            const int64_t last = causal ? Sk - Sq + i : Sk - 1;
            std::vector<double> s(Sk, 0.0);
            double mx = -1e300;
            for (int64_t j = 0; j <= last; ++j) {
                double dot = 0;
                for (int64_t d = 0; d < D; ++d) dot += Q[(h * Sq + i) * D + d] * K[(kh * Sk + j) * D + d];
                s[j] = dot / std::sqrt(double(D));
                mx = std::max(mx, s[j]);
            }
            double z = 0;
            for (int64_t j = 0; j <= last; ++j) z += std::exp(s[j] - mx);
            for (int64_t j = 0; j <= last; ++j) {
                const double p = std::exp(s[j] - mx) / z;
                r.probs[(h * Sq + i) * Sk + j] = p;
                for (int64_t d = 0; d < D; ++d) r.out[(h * Sq + i) * D + d] += p * V[(kh * Sk + j) * D + d];
            }
        }
    }
    return r;
}

double max_abs_diff(const at::Tensor& a, const std::vector<double>& b) {
    at::Tensor x = a.to(at::kDouble).contiguous();
    EXPECT_EQ(size_t(x.numel()), b.size());
    const double* p = x.data_ptr<double>();
    double m = 0;
    for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::abs(p[i] - b[i]));
    return m;
}

struct Case {
    int64_t H, Hkv, Sq, Sk, D;
    bool causal;
};

const Case kCases[] = {
    {4, 2, 7, 7, 16, true},   // prefill, GQA
    {4, 2, 3, 9, 16, true},   // chunk appended to a cache
    {4, 2, 1, 9, 16, true},   // decode
    {4, 4, 5, 5, 8, true},    // MHA prefill
    {4, 1, 6, 6, 8, true},    // MQA
    {4, 2, 5, 8, 16, false},  // no mask, Sq != Sk
    {4, 4, 17, 17, 16, false}, // CLIP-like
    // Longer than the fused path's 128-row query blocks: several blocks plus a remainder.
    {4, 2, 300, 300, 16, true},  // prefill across 3 blocks
    {4, 2, 150, 300, 16, true},  // chunk of 150 appended to 150 cached entries
    {4, 2, 257, 257, 8, false},  // unmasked, 3 blocks
};

}  // namespace

TEST(Attention, FusedAndPlainMatchNaiveLoop) {
    at::manual_seed(7);
    for (const Case& c : kCases) {
        at::Tensor q = at::randn({c.H, c.Sq, c.D}), k = at::randn({c.Hkv, c.Sk, c.D}),
                   v = at::randn({c.Hkv, c.Sk, c.D});
        Naive ref = naive_attention(q, k, v, c.causal);
        for (dl::AttentionImpl impl : {dl::AttentionImpl::fused, dl::AttentionImpl::plain}) {
            at::Tensor out = dl::attention(q, k, v, c.causal, impl);
            ASSERT_EQ(out.sizes(), q.sizes());
            EXPECT_LT(max_abs_diff(out, ref.out), 1e-5)
                << "H=" << c.H << " Hkv=" << c.Hkv << " Sq=" << c.Sq << " Sk=" << c.Sk
                << " causal=" << c.causal << " impl=" << int(impl);
        }
    }
}

TEST(Attention, NonContiguousInputs) {
    // The decoder passes q as a transposed view and k/v as narrowed cache buffers.
    at::manual_seed(8);
    at::Tensor q = at::randn({5, 4, 16}).transpose(0, 1);           // [4,5,16] view
    at::Tensor kbuf = at::randn({2, 20, 16}), vbuf = at::randn({2, 20, 16});
    at::Tensor k = kbuf.narrow(1, 0, 9), v = vbuf.narrow(1, 0, 9);  // [2,9,16] views
    Naive ref = naive_attention(q, k, v, true);
    EXPECT_LT(max_abs_diff(dl::attention(q, k, v, true, dl::AttentionImpl::fused), ref.out), 1e-5);
    EXPECT_LT(max_abs_diff(dl::attention(q, k, v, true, dl::AttentionImpl::plain), ref.out), 1e-5);
}

TEST(Attention, TestCanFail) {
    // The naive reference distinguishes causal from non-causal and the GQA head mapping, so a
    // kernel that ignored either would fail the comparison above.
    at::manual_seed(9);
    at::Tensor q = at::randn({4, 6, 16}), k = at::randn({2, 6, 16}), v = at::randn({2, 6, 16});
    at::Tensor out = dl::attention(q, k, v, true);
    EXPECT_GT(max_abs_diff(out, naive_attention(q, k, v, false).out), 1e-2);
    EXPECT_GT(max_abs_diff(out, naive_attention(q, k, v, true, /*wrong_gqa=*/true).out), 1e-2);
    // Causal with Sq < Sk must be bottom-right aligned, not top-left.
    at::Tensor q3 = q.narrow(1, 0, 3);
    at::Tensor o3 = dl::attention(q3, k, v, true);
    at::Tensor top_left = dl::attention(q3, k.narrow(1, 0, 3), v.narrow(1, 0, 3), true);
    EXPECT_GT((o3 - top_left).abs().max().item<double>(), 1e-2);
}

TEST(Attention, Bf16CloseToNaive) {
    at::manual_seed(10);
    at::Tensor q = at::randn({4, 7, 16}), k = at::randn({2, 7, 16}), v = at::randn({2, 7, 16});
    Naive ref = naive_attention(q, k, v, true);
    for (dl::AttentionImpl impl : {dl::AttentionImpl::fused, dl::AttentionImpl::plain}) {
        at::Tensor out = dl::attention(q.to(at::kBFloat16), k.to(at::kBFloat16), v.to(at::kBFloat16), true, impl);
        EXPECT_EQ(out.scalar_type(), at::kBFloat16);
        EXPECT_LT(max_abs_diff(out, ref.out), 5e-2) << int(impl);  // bf16 has 8 mantissa bits
    }
}

TEST(Attention, ProbsRowsMatchNaive) {
    at::manual_seed(11);
    const int64_t H = 4, Hkv = 2, S = 10, D = 16;
    at::Tensor q = at::randn({H, S, D}), k = at::randn({Hkv, S, D}), v = at::randn({Hkv, S, D});
    Naive ref = naive_attention(q, k, v, true);
    std::vector<int64_t> rows = {9, 0, 4};
    std::vector<at::Tensor> parts;
    for (int64_t r : rows) parts.push_back(q.narrow(1, r, 1));
    at::Tensor p = dl::attention_probs_rows(at::cat(parts, 1), k, rows);  // [H,3,S]
    ASSERT_EQ(p.sizes(), (std::vector<int64_t>{H, 3, S}));
    EXPECT_EQ(p.scalar_type(), at::kFloat);
    for (int64_t h = 0; h < H; ++h)
        for (size_t ri = 0; ri < rows.size(); ++ri)
            for (int64_t j = 0; j < S; ++j)
                EXPECT_NEAR(p[h][ri][j].item<double>(), ref.probs[(h * S + rows[ri]) * S + j], 1e-6)
                    << h << " " << rows[ri] << " " << j;
    EXPECT_THROW(dl::attention_probs_rows(q.narrow(1, 0, 1), k, {S}), dl::Error);
    EXPECT_THROW(dl::attention_probs_rows(q.narrow(1, 0, 2), k, {1}), dl::Error);
}

TEST(Attention, ColumnMeanMatchesNaive) {
    at::manual_seed(12);
    const int64_t H = 4, Hkv = 2, S = 13, D = 8;
    at::Tensor q = at::randn({H, S, D}), k = at::randn({Hkv, S, D}), v = at::randn({Hkv, S, D});
    Naive ref = naive_attention(q, k, v, true);
    std::vector<double> expect(S, 0.0);
    for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < S; ++i)
            for (int64_t j = 0; j < S; ++j) expect[j] += ref.probs[(h * S + i) * S + j] / double(H * S);
    for (int64_t chunk : {1, 4, 13, 100}) {
        at::Tensor m = dl::attention_column_mean(q, k, chunk);
        ASSERT_EQ(m.numel(), S);
        EXPECT_LT(max_abs_diff(m, expect), 1e-6) << "chunk " << chunk;
        EXPECT_NEAR(m.sum().item<double>(), 1.0, 1e-5);  // each row sums to 1, mean over rows
    }
}

TEST(Attention, RejectsBadShapes) {
    at::Tensor q = at::randn({3, 4, 8}), k = at::randn({2, 4, 8}), v = at::randn({2, 4, 8});
    EXPECT_THROW(dl::attention(q, k, v, true), dl::Error);  // 3 heads over 2 kv heads
    at::Tensor q4 = at::randn({4, 6, 8});
    EXPECT_THROW(dl::attention(q4, k, v, true), dl::Error);  // Sq > Sk causal
    EXPECT_THROW(dl::attention(q4.narrow(2, 0, 4), k, v, false), dl::Error);  // head dim
}
