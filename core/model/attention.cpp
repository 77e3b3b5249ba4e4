// Attention kernels: fused SDPA (version-dependent entry point), a plain matmul/softmax path,
// and float32 probability rows for the pruning methods. See attention.h for the conventions.
#include "core/model/attention.h"

#include <torch/version.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/common.h"

namespace dl {

at::Tensor linear_layer(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
    if (!b.defined()) return at::linear(x, w);
    return at::linear(x, w, b.scalar_type() == w.scalar_type() ? b : b.to(w.scalar_type()));
}

static std::atomic<int> g_default_impl{-1};

AttentionImpl attention_default_impl() {
    int v = g_default_impl.load();
    if (v < 0) {
        const char* env = std::getenv("DARTLENS_ATTENTION");
        v = (env && std::strcmp(env, "plain") == 0) ? 1 : 0;
        g_default_impl.store(v);
    }
    return v == 1 ? AttentionImpl::plain : AttentionImpl::fused;
}

void set_attention_default_impl(AttentionImpl impl) {
    g_default_impl.store(impl == AttentionImpl::plain ? 1 : 0);
}

static void check_shapes(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal) {
    if (q.dim() != 3 || k.dim() != 3 || v.dim() != 3)
        throw Error(str_cat("attention: expected q [H,Sq,D], k/v [Hkv,Sk,D], got dims ", q.dim(), ",",
                            k.dim(), ",", v.dim()));
    const int64_t H = q.size(0), Hkv = k.size(0);
    if (Hkv <= 0 || H % Hkv != 0 || v.size(0) != Hkv)
        throw Error(str_cat("attention: query heads ", H, " not a multiple of kv heads ", Hkv));
    if (k.size(1) != v.size(1) || q.size(2) != k.size(2))
        throw Error(str_cat("attention: k/v length or head dim mismatch (q D=", q.size(2), ", k D=",
                            k.size(2), ", k S=", k.size(1), ", v S=", v.size(1), ")"));
    if (causal && q.size(1) > k.size(1))
        throw Error(str_cat("attention: causal with more queries (", q.size(1), ") than keys (",
                            k.size(1), ")"));
}

// Additive mask [Sq,Sk] in `dtype`: 0 where query i may see key j (j <= Sk-Sq+i), -inf elsewhere.
static at::Tensor causal_additive_mask(int64_t Sq, int64_t Sk, at::ScalarType dtype, at::Device device) {
    auto opts = at::TensorOptions().dtype(at::kLong).device(device);
    at::Tensor cols = at::arange(Sk, opts).unsqueeze(0);                 // [1,Sk]
    at::Tensor rows = (at::arange(Sq, opts) + (Sk - Sq)).unsqueeze(1);   // [Sq,1]
    at::Tensor blocked = cols.gt(rows);                                  // [Sq,Sk]
    at::Tensor mask = at::zeros({Sq, Sk}, at::TensorOptions().dtype(dtype).device(device));
    mask.masked_fill_(blocked, -std::numeric_limits<float>::infinity());
    return mask;
}

#if TORCH_VERSION_MAJOR >= 2
// q [B,H,Sq,D] etc.; mask additive [Sq,Sk] or undefined.
static at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const at::Tensor& mask, bool is_causal) {
    c10::optional<at::Tensor> m;
    if (mask.defined()) m = mask;
    return at::scaled_dot_product_attention(q, k, v, m, 0.0, is_causal);
}
#endif

// Plain path on grouped queries: qg [Hkv,M,D], k/v [Hkv,Sk,D], mask additive [M,Sk] or undefined.
static at::Tensor plain_grouped(const at::Tensor& qg, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& mask) {
    const double scale = 1.0 / std::sqrt(double(qg.size(2)));
    at::Tensor scores = at::matmul(qg.to(at::kFloat), k.to(at::kFloat).transpose(1, 2)).mul_(scale);
    if (mask.defined()) scores.add_(mask.to(at::kFloat));
    at::Tensor probs = at::softmax(scores, -1).to(v.scalar_type());  // HF eager: softmax in f32
    return at::matmul(probs, v);                                       // [Hkv,M,D]
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal) {
    return attention(q, k, v, causal, attention_default_impl());
}

// Query rows per block of the blocked path: causal blocks only multiply the keys they can see, so
// a prefill does about S*(S+B)/2 instead of S*S dot products per head.
static constexpr int64_t kQueryBlock = 128;

// Upper-triangular additive mask [n,n] in `dtype`: -inf where column > row.
static at::Tensor triangle_mask(int64_t n, at::ScalarType dtype, at::Device device) {
    at::Tensor m = at::full({n, n}, -std::numeric_limits<float>::infinity(),
                            at::TensorOptions().dtype(dtype).device(device));
    return m.triu_(1);
}

// Blocked attention on any device, the way HF's eager attention computes it (scores in the compute
// dtype, softmax in float32, cast back), but over blocks of query rows: the g query heads sharing
// a kv head become one batch entry of g*B rows, so K/V are never repeated, and a causal block only
// sees keys 0..Sk-Sq+i1-1 with the mask applied to its diagonal part only. Returns [H,Sq,D] (a
// view of a [Sq,H,D] buffer, so that the caller's transpose(0,1).reshape is free).
static at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal) {
    const int64_t H = q.size(0), Sq = q.size(1), D = q.size(2);
    const int64_t Hkv = k.size(0), Sk = k.size(1), g = H / Hkv;
    const int64_t offset = Sk - Sq;  // query i sees keys 0..offset+i when causal
    const double scale = 1.0 / std::sqrt(double(D));
    const bool f32_softmax = q.scalar_type() != at::kFloat && q.scalar_type() != at::kDouble;
    at::Tensor out_shd = at::empty({Sq, H, D}, q.options());
    at::Tensor out4 = out_shd.view({Sq, Hkv, g, D}).permute({1, 2, 0, 3});  // [Hkv,g,Sq,D] view
    at::Tensor q4 = q.view({Hkv, g, Sq, D});
    const int64_t block = (causal && Sq > 1) ? kQueryBlock : Sq;
    at::Tensor mask;
    for (int64_t i0 = 0; i0 < Sq; i0 += block) {
        const int64_t nb = std::min(block, Sq - i0);
        const int64_t nk = causal ? offset + i0 + nb : Sk;
        at::Tensor qb = at::empty({Hkv, g, nb, D}, q.options());
        qb.copy_(q4.narrow(2, i0, nb)).mul_(scale);
        qb = qb.view({Hkv, g * nb, D});
        at::Tensor scores = at::bmm(qb, k.narrow(1, 0, nk).transpose(1, 2));    // [Hkv,g*nb,nk]
        if (causal && nb > 1) {
            if (!mask.defined() || mask.size(0) != nb) mask = triangle_mask(nb, scores.scalar_type(), q.device());
            scores.view({Hkv, g, nb, nk}).narrow(3, nk - nb, nb).add_(mask);
        }
        at::Tensor probs = f32_softmax ? at::softmax(scores, -1, at::kFloat).to(v.scalar_type())
                                       : at::softmax(scores, -1);
        at::Tensor ob = at::bmm(probs, v.narrow(1, 0, nk));                     // [Hkv,g*nb,D]
        out4.narrow(2, i0, nb).copy_(ob.view({Hkv, g, nb, D}));
    }
    return out_shd.permute({1, 0, 2});  // [H,Sq,D]
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal,
                     AttentionImpl impl) {
    check_shapes(q, k, v, causal);
    const int64_t H = q.size(0), Sq = q.size(1), D = q.size(2);
    const int64_t Hkv = k.size(0), Sk = k.size(1), g = H / Hkv;
#if TORCH_VERSION_MAJOR >= 2
    if (impl == AttentionImpl::fused && causal && Sq == Sk && Sq > 1) {
        // Prefill: let the kernel apply its own (top-left aligned, here exact) causal mask, with
        // the kv heads repeated so that every query head has its own.
        at::Tensor kr = k, vr = v;
        if (g > 1) {
            kr = k.unsqueeze(1).expand({Hkv, g, Sk, D}).reshape({H, Sk, D});
            vr = v.unsqueeze(1).expand({Hkv, g, Sk, D}).reshape({H, Sk, D});
        }
        return sdpa(q.unsqueeze(0), kr.unsqueeze(0), vr.unsqueeze(0), at::Tensor(), true).squeeze(0);
    }
    if (impl == AttentionImpl::fused && (Sq == 1 || (!causal && g == 1))) {
        // Decode (one query: nothing to mask) and CLIP: grouped queries need no repeated K/V.
        at::Tensor qg = q.reshape({Hkv, g * Sq, D});
        return sdpa(qg.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0), at::Tensor(), false).squeeze(0).reshape({H, Sq, D});
    }
#endif
    if (impl == AttentionImpl::fused) return blocked_attention(q, k, v, causal);

    // Plain: grouped queries, the g query heads sharing kv head j become g*Sq rows of one head.
    const bool need_mask = causal && Sq > 1;
    at::Tensor qg = q.reshape({Hkv, g * Sq, D});
    at::Tensor mask;
    if (need_mask) {
        mask = causal_additive_mask(Sq, Sk, at::kFloat, q.device());
        if (g > 1) mask = mask.repeat({g, 1});  // [g*Sq,Sk], row j*Sq+i is query i
    }
    return plain_grouped(qg, k, v, mask).reshape({H, Sq, D});
}

at::Tensor attention_windowed(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t window) {
    check_shapes(q, k, v, true);
    if (window <= 0) throw Error(str_cat("attention_windowed: window ", window, " must be positive"));
    const int64_t H = q.size(0), Sq = q.size(1), D = q.size(2);
    const int64_t Hkv = k.size(0), Sk = k.size(1), g = H / Hkv;
    const int64_t offset = Sk - Sq;  // query i is key index offset + i
    at::Tensor out = at::empty({H, Sq, D}, q.options());
    auto opts_long = at::TensorOptions().dtype(at::kLong).device(q.device());
    for (int64_t i0 = 0; i0 < Sq; i0 += kQueryBlock) {
        const int64_t nb = std::min(kQueryBlock, Sq - i0);
        // keys this block can see: (offset + i0 - window, offset + i0 + nb - 1]
        const int64_t lo = std::max<int64_t>(0, offset + i0 - window + 1), hi = offset + i0 + nb;
        at::Tensor cols = at::arange(lo, hi, opts_long).unsqueeze(0);                   // [1,nk]
        at::Tensor rows = (at::arange(i0, i0 + nb, opts_long) + offset).unsqueeze(1);  // [nb,1]
        at::Tensor blocked = cols.gt(rows).logical_or(cols.le(rows - window));          // [nb,nk]
        at::Tensor mask = at::zeros(blocked.sizes(), at::TensorOptions().dtype(at::kFloat).device(q.device()));
        mask.masked_fill_(blocked, -std::numeric_limits<float>::infinity());
        if (g > 1) mask = mask.repeat({g, 1});
        at::Tensor qg = q.narrow(1, i0, nb).reshape({Hkv, g * nb, D});
        at::Tensor ob = plain_grouped(qg, k.narrow(1, lo, hi - lo), v.narrow(1, lo, hi - lo), mask);
        out.narrow(1, i0, nb).copy_(ob.reshape({H, nb, D}));
    }
    return out;
}

at::Tensor attention_probs_rows(const at::Tensor& q_rows, const at::Tensor& k,
                                const std::vector<int64_t>& row_positions) {
    if (q_rows.dim() != 3 || k.dim() != 3 || q_rows.size(2) != k.size(2) || k.size(0) <= 0 ||
        q_rows.size(0) % k.size(0) != 0)
        throw Error("attention_probs_rows: expected q_rows [H,R,D] and k [Hkv,S,D] with H % Hkv == 0");
    const int64_t H = q_rows.size(0), R = q_rows.size(1), D = q_rows.size(2);
    const int64_t Hkv = k.size(0), S = k.size(1), g = H / Hkv;
    if (int64_t(row_positions.size()) != R)
        throw Error(str_cat("attention_probs_rows: ", row_positions.size(), " positions for ", R, " rows"));
    for (int64_t p : row_positions)
        if (p < 0 || p >= S) throw Error(str_cat("attention_probs_rows: row position ", p, " outside 0..", S - 1));

    auto opts_long = at::TensorOptions().dtype(at::kLong).device(k.device());
    at::Tensor pos = at::tensor(row_positions, at::TensorOptions().dtype(at::kLong)).to(k.device());
    at::Tensor blocked = at::arange(S, opts_long).unsqueeze(0).gt(pos.unsqueeze(1));  // [R,S]
    if (g > 1) blocked = blocked.repeat({g, 1});                                        // [g*R,S]

    const double scale = 1.0 / std::sqrt(double(D));
    at::Tensor qg = q_rows.reshape({Hkv, g * R, D}).to(at::kFloat);
    at::Tensor scores = at::matmul(qg, k.to(at::kFloat).transpose(1, 2)).mul_(scale);  // [Hkv,g*R,S]
    scores.masked_fill_(blocked.unsqueeze(0), -std::numeric_limits<float>::infinity());
    return at::softmax(scores, -1).reshape({H, R, S});
}

at::Tensor attention_column_mean(const at::Tensor& q_all, const at::Tensor& k, int64_t chunk) {
    if (q_all.dim() != 3 || k.dim() != 3 || q_all.size(1) != k.size(1))
        throw Error("attention_column_mean: expected q_all [H,S,D] and k [Hkv,S,D] of the same S");
    const int64_t H = q_all.size(0), S = q_all.size(1);
    if (chunk <= 0) chunk = 256;
    at::Tensor acc = at::zeros({S}, at::TensorOptions().dtype(at::kFloat).device(k.device()));
    for (int64_t r0 = 0; r0 < S; r0 += chunk) {
        const int64_t r1 = std::min(S, r0 + chunk);
        std::vector<int64_t> positions;
        for (int64_t r = r0; r < r1; ++r) positions.push_back(r);
        at::Tensor p = attention_probs_rows(q_all.narrow(1, r0, r1 - r0), k, positions);  // [H,R,S]
        acc.add_(p.sum(at::IntArrayRef{0, 1}));
    }
    return acc.div_(double(H * S));
}

}  // namespace dl
