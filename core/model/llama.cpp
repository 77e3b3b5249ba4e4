// Llama decoder layers, RoPE tables and the KV cache (see llama.h for the conventions).
#include "core/model/llama.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include "core/api.h"
#include "core/model/attention.h"
#include "core/common.h"

namespace dl {

// --- KV cache -----------------------------------------------------------------------------------

KVCache::KVCache(int num_layers, int64_t num_kv_heads, int64_t head_dim, int64_t capacity,
                 at::ScalarType dtype, at::Device device)
    : KVCache(num_kv_heads, head_dim,
              std::vector<int64_t>(size_t(std::max(num_layers, 0)), std::max<int64_t>(capacity, 1)), dtype,
              device) {
    if (num_layers <= 0 || capacity < 0)
        throw Error(str_cat("KVCache: bad geometry layers=", num_layers, " capacity=", capacity));
}

KVCache::KVCache(int64_t num_kv_heads, int64_t head_dim, const std::vector<int64_t>& capacities,
                 at::ScalarType dtype, at::Device device)
    : kv_heads_(num_kv_heads), head_dim_(head_dim), options_(at::TensorOptions().dtype(dtype).device(device)) {
    if (capacities.empty() || num_kv_heads <= 0 || head_dim <= 0)
        throw Error(str_cat("KVCache: bad geometry layers=", capacities.size(), " kv_heads=", num_kv_heads,
                            " head_dim=", head_dim));
    for (int64_t c : capacities) {
        if (c < 0) throw Error(str_cat("KVCache: negative capacity ", c));
        k.push_back(at::empty({num_kv_heads, c, head_dim}, options_));
        v.push_back(at::empty({num_kv_heads, c, head_dim}, options_));
    }
    cap = capacities;
    len.assign(capacities.size(), 0);
}

KVCache KVCache::for_model(const LlavaConfig& config, const LlavaWeights& weights, int64_t capacity) {
    return for_model(config, weights,
                     std::vector<int64_t>(size_t(config.text.num_hidden_layers), std::max<int64_t>(capacity, 1)));
}

KVCache KVCache::for_model(const LlavaConfig& config, const LlavaWeights& weights,
                           const std::vector<int64_t>& capacities) {
    if (int(capacities.size()) != config.text.num_hidden_layers)
        throw Error(str_cat("KVCache: ", capacities.size(), " capacities for ", config.text.num_hidden_layers,
                            " layers"));
    const at::Tensor& ref = weights.text.layers.at(0).k_w;
    return KVCache(config.text.num_key_value_heads, config.text.head_dim(), capacities, ref.scalar_type(),
                   ref.device());
}

static void check_layer(const KVCache& c, int layer) {
    if (layer < 0 || layer >= c.num_layers())
        throw Error(str_cat("KVCache: layer ", layer, " outside 0..", c.num_layers() - 1));
}

int64_t KVCache::capacity(int layer) const {
    check_layer(*this, layer);
    return cap[size_t(layer)];
}

void KVCache::reserve(int64_t new_capacity) {
    for (int l = 0; l < num_layers(); ++l) reserve_layer(l, new_capacity);
}

void KVCache::reserve_layer(int layer, int64_t new_capacity) {
    check_layer(*this, layer);
    const size_t l = size_t(layer);
    if (new_capacity <= cap[l]) return;
    at::Tensor nk = at::empty({kv_heads_, new_capacity, head_dim_}, options_);
    at::Tensor nv = at::empty({kv_heads_, new_capacity, head_dim_}, options_);
    if (len[l] > 0) {
        nk.narrow(1, 0, len[l]).copy_(k[l].narrow(1, 0, len[l]));
        nv.narrow(1, 0, len[l]).copy_(v[l].narrow(1, 0, len[l]));
    }
    k[l] = nk;
    v[l] = nv;
    cap[l] = new_capacity;
}

int64_t KVCache::length(int layer) const {
    check_layer(*this, layer);
    return len[layer];
}

at::Tensor KVCache::keys(int layer) const {
    check_layer(*this, layer);
    return k[layer].narrow(1, 0, len[layer]);
}

at::Tensor KVCache::values(int layer) const {
    check_layer(*this, layer);
    return v[layer].narrow(1, 0, len[layer]);
}

void KVCache::append(int layer, const at::Tensor& k_new, const at::Tensor& v_new) {
    check_layer(*this, layer);
    if (k_new.dim() != 3 || k_new.size(0) != k[layer].size(0) || k_new.size(2) != k[layer].size(2) ||
        !v_new.sizes().equals(k_new.sizes()))
        throw Error(str_cat("KVCache::append: layer ", layer, ": expected [", k[layer].size(0), ",n,",
                            k[layer].size(2), "] keys and values of the same shape"));
    const int64_t n = k_new.size(1);
    if (len[layer] + n > cap[layer]) reserve_layer(layer, std::max(2 * cap[layer], len[layer] + n));
    k[layer].narrow(1, len[layer], n).copy_(k_new);
    v[layer].narrow(1, len[layer], n).copy_(v_new);
    len[layer] += n;
}

void KVCache::truncate(int layer, int64_t n) {
    check_layer(*this, layer);
    if (n < 0 || n > len[layer])
        throw Error(str_cat("KVCache::truncate: layer ", layer, ": length ", n, " outside 0..", len[layer]));
    len[layer] = n;
}

void KVCache::clear() { std::fill(len.begin(), len.end(), 0); }

KVCache KVCache::clone() const {
    KVCache c = *this;  // shares the buffers; replace them with copies
    for (size_t l = 0; l < k.size(); ++l) {
        c.k[l] = k[l].clone();
        c.v[l] = v[l].clone();
    }
    return c;
}

void KVCache::copy_prefix_from(const KVCache& other, int layer_begin, int layer_end) {
    if (k.empty()) {  // take the other's geometry, with no room yet
        kv_heads_ = other.kv_heads_;
        head_dim_ = other.head_dim_;
        options_ = other.options_;
        cap.assign(other.len.size(), 0);
        len.assign(other.len.size(), 0);
        for (size_t l = 0; l < other.k.size(); ++l) {
            k.push_back(at::empty({kv_heads_, 0, head_dim_}, options_));
            v.push_back(at::empty({kv_heads_, 0, head_dim_}, options_));
        }
    }
    if (other.num_layers() != num_layers() || layer_begin < 0 || layer_end > num_layers() ||
        other.kv_heads_ != kv_heads_ || other.head_dim_ != head_dim_)
        throw Error(str_cat("KVCache::copy_prefix_from: layers [", layer_begin, ",", layer_end, ") of a ",
                            other.num_layers(), "-layer cache (", other.kv_heads_, "x", other.head_dim_,
                            ") into a ", num_layers(), "-layer one (", kv_heads_, "x", head_dim_, ")"));
    for (int l = layer_begin; l < layer_end; ++l) {
        const int64_t n = other.len[l];
        reserve_layer(l, n);
        if (n > 0) {
            k[l].narrow(1, 0, n).copy_(other.k[l].narrow(1, 0, n));
            v[l].narrow(1, 0, n).copy_(other.v[l].narrow(1, 0, n));
        }
        len[l] = n;
    }
}

int64_t KVCache::bytes() const {
    int64_t total = 0;
    for (size_t l = 0; l < k.size(); ++l)
        total += 2 * len[l] * k[l].size(0) * k[l].size(2) * int64_t(k[l].element_size());
    return total;
}

int64_t KVCache::allocated_bytes() const {
    int64_t total = 0;
    for (size_t l = 0; l < k.size(); ++l) total += 2 * k[l].numel() * int64_t(k[l].element_size());
    return total;
}

// --- norms and rotary embedding -----------------------------------------------------------------

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
    // Same arithmetic as (x.float() * rsqrt(mean(x^2) + eps)).to(dtype) * w, in fewer passes:
    // the float copy is normalised in place, and the product with the (float32) weight is
    // computed in float32 and rounded straight into the output dtype.
    at::Tensor xf = x.to(at::kFloat);                                   // a copy unless x is f32
    at::Tensor inv = xf.pow(2).mean(-1, true).add_(eps).rsqrt_();       // [S,1]
    at::Tensor normed = xf.is_same(x) ? xf * inv : xf.mul_(inv);
    if (normed.scalar_type() != x.scalar_type()) normed = normed.to(x.scalar_type());
    if (weight.scalar_type() == x.scalar_type()) return normed.mul_(weight);
    at::Tensor out = at::empty_like(normed);
    at::mul_out(out, normed, weight);
    return out;
}

namespace {
struct RopeTable {
    at::Tensor cos, sin;  // [P, D]
};
std::mutex g_rope_mutex;
std::map<std::tuple<double, int64_t, int, std::string>, RopeTable> g_rope_tables;
}  // namespace

// The table for (theta, D, dtype, device) with at least `needed` rows.
static RopeTable rope_table(const TextConfig& config, int64_t needed, at::ScalarType dtype,
                            at::Device device) {
    const int64_t D = config.head_dim();
    auto key = std::make_tuple(config.rope_theta, D, int(dtype), device.str());
    std::lock_guard<std::mutex> lock(g_rope_mutex);
    auto it = g_rope_tables.find(key);
    if (it != g_rope_tables.end() && it->second.cos.size(0) >= needed) return it->second;
    int64_t rows = std::max<int64_t>(config.max_position_embeddings, 1);
    while (rows < needed) rows *= 2;
    // As HF's LlamaRotaryEmbedding: everything in float32.
    at::Tensor exponent = at::arange(0, D, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / double(D);
    at::Tensor inv_freq = 1.0 / at::pow(config.rope_theta, exponent);   // [D/2]
    at::Tensor pos = at::arange(rows, at::TensorOptions().dtype(at::kLong)).to(at::kFloat);
    at::Tensor freqs = at::outer(pos, inv_freq);                          // [P, D/2]
    at::Tensor emb = at::cat({freqs, freqs}, -1);                         // [P, D]
    RopeTable t{emb.cos().to(dtype).to(device), emb.sin().to(dtype).to(device)};
    g_rope_tables[key] = t;
    return t;
}

void rope_cos_sin(const TextConfig& config, const at::Tensor& positions, at::ScalarType dtype,
                  at::Device device, at::Tensor& cos, at::Tensor& sin, int64_t max_position) {
    if (positions.dim() != 1) throw Error("rope_cos_sin: positions must be [R] int64");
    if (positions.numel() == 0) {
        cos = at::empty({0, config.head_dim()}, at::TensorOptions().dtype(dtype).device(device));
        sin = cos;
        return;
    }
    at::Tensor pos = positions.to(at::kLong);
    int64_t max_pos = max_position;
    if (max_pos < 0) {
        max_pos = pos.max().item<int64_t>();
        if (pos.min().item<int64_t>() < 0) throw Error("rope_cos_sin: negative position id");
    }
    RopeTable t = rope_table(config, max_pos + 1, dtype, device);
    pos = pos.to(device);
    cos = t.cos.index_select(0, pos);  // [R, D]
    sin = t.sin.index_select(0, pos);
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    // x*cos + rotate_half(x)*sin with rotate_half(x) = cat(-x2, x1), written as two in-place
    // multiply-adds on the halves (same products and sums, no rotated copy).
    const int64_t half = x.size(-1) / 2;
    at::Tensor out = x * cos;  // cos/sin [R,D] broadcast over heads
    at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
    out.narrow(-1, 0, half).addcmul_(x2, sin.narrow(-1, 0, half), -1);
    out.narrow(-1, half, half).addcmul_(x1, sin.narrow(-1, half, half));
    return out;
}

// --- layers -------------------------------------------------------------------------------------

static void check_layer_index(const LlavaWeights& weights, int layer) {
    if (layer < 0 || layer >= int(weights.text.layers.size()))
        throw Error(str_cat("llama: layer ", layer, " outside 0..", int(weights.text.layers.size()) - 1));
}

// Queries/keys/values of one layer for x [S,d]: q [H,S,D], k/v [Hkv,S,D], q and k rotated.
static void layer_qkv(const LlamaLayerWeights& L, const TextConfig& tc, const at::Tensor& h,
                      const at::Tensor& cos, const at::Tensor& sin, at::Tensor* q, at::Tensor* k,
                      at::Tensor* v) {
    const int64_t S = h.size(0), D = tc.head_dim();
    const int64_t H = tc.num_attention_heads, Hkv = tc.num_key_value_heads;
    if (q) *q = apply_rope(linear_layer(h, L.q_w, L.q_b).view({S, H, D}).transpose(0, 1), cos, sin);
    if (k) *k = apply_rope(linear_layer(h, L.k_w, L.k_b).view({S, Hkv, D}).transpose(0, 1), cos, sin);
    if (v) *v = linear_layer(h, L.v_w, L.v_b).view({S, Hkv, D}).transpose(0, 1);
}

static at::Tensor layer_forward(const LlavaWeights& weights, const LlavaConfig& config, int layer,
                                const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                KVCache& cache) {
    const TextConfig& tc = config.text;
    const LlamaLayerWeights& L = weights.text.layers[layer];
    const int64_t S = x.size(0);
    // attention block
    at::Tensor h = rms_norm(x, L.input_norm, tc.rms_norm_eps);                  // [S,d]
    at::Tensor q, k, v;
    layer_qkv(L, tc, h, cos, sin, &q, &k, &v);                                  // [H,S,D], [Hkv,S,D]
    cache.append(layer, k, v);
    // Mistral's sliding window changes the result only once the cache is longer than the window.
    const bool windowed = tc.sliding_window > 0 && cache.length(layer) > tc.sliding_window;
    at::Tensor a = windowed ? attention_windowed(q, cache.keys(layer), cache.values(layer), tc.sliding_window)
                            : attention(q, cache.keys(layer), cache.values(layer), true);  // [H,S,D]
    a = a.transpose(0, 1).reshape({S, -1});                                     // [S,H*D]
    at::Tensor out = linear_layer(a, L.o_w, L.o_b).add_(x);  // x + o_proj(a)
    // MLP block
    h = rms_norm(out, L.post_norm, tc.rms_norm_eps);
    at::Tensor m = at::linear(h, L.gate_w);                                       // [S,I]
    if (m.is_cpu() && m.scalar_type() == at::kBFloat16) {
        // LibTorch's bf16 silu on CPU is ~3x slower than float32's: compute silu in float32 and
        // round once to bf16, which is what the bf16 kernel computes too.
        at::Tensor mf = m.to(at::kFloat);
        m.copy_(at::silu_(mf));
    } else {
        at::silu_(m);
    }
    m.mul_(at::linear(h, L.up_w));                                                // silu(gate) * up
    out.add_(at::linear(m, L.down_w));
    return out;
}

at::Tensor llama_layer(const LlavaWeights& weights, const LlavaConfig& config, int layer,
                       const at::Tensor& x, const at::Tensor& positions, KVCache& cache) {
    check_layer_index(weights, layer);
    at::Tensor cos, sin;
    rope_cos_sin(config.text, positions, x.scalar_type(), x.device(), cos, sin);
    return layer_forward(weights, config, layer, x, cos, sin, cache);
}

void run_layers(const LlavaWeights& weights, const LlavaConfig& config, at::Tensor& x,
                const at::Tensor& position_ids, KVCache& cache, int layer_begin, int layer_end,
                const std::atomic<bool>* cancel, std::vector<at::Tensor>* layer_inputs, int64_t max_position) {
    if (x.dim() != 2 || x.size(1) != config.text.hidden_size)
        throw Error(str_cat("run_layers: x must be [S,", config.text.hidden_size, "]"));
    if (position_ids.dim() != 1 || position_ids.size(0) != x.size(0))
        throw Error(str_cat("run_layers: position_ids must be [", x.size(0), "], got ", position_ids.sizes()));
    if (layer_begin < 0 || layer_end > int(weights.text.layers.size()) || layer_begin > layer_end)
        throw Error(str_cat("run_layers: layer range [", layer_begin, ",", layer_end, ") outside 0..",
                            weights.text.layers.size()));
    if (cache.num_layers() != int(weights.text.layers.size()))
        throw Error(str_cat("run_layers: cache has ", cache.num_layers(), " layers, model ",
                            weights.text.layers.size()));
    at::Tensor cos, sin;
    rope_cos_sin(config.text, position_ids, x.scalar_type(), x.device(), cos, sin, max_position);
    for (int l = layer_begin; l < layer_end; ++l) {
        if (cancel && cancel->load()) throw Cancelled();
        if (layer_inputs) layer_inputs->push_back(x);
        x = layer_forward(weights, config, l, x, cos, sin, cache);
    }
}

at::Tensor final_norm(const LlavaWeights& weights, const LlavaConfig& config, const at::Tensor& x) {
    return rms_norm(x, weights.text.norm, config.text.rms_norm_eps);
}

at::Tensor lm_logits(const LlavaWeights& weights, const at::Tensor& x_normed) {
    return at::linear(x_normed, weights.text.lm_head).to(at::kFloat);
}

at::Tensor last_logits(const LlavaWeights& weights, const LlavaConfig& config, const at::Tensor& x) {
    at::Tensor last = x.narrow(0, x.size(0) - 1, 1);
    return lm_logits(weights, final_norm(weights, config, last)).squeeze(0);
}

at::Tensor layer_query(const LlavaWeights& weights, const LlavaConfig& config, int layer,
                       const at::Tensor& x_in_rows, const at::Tensor& positions_rows) {
    check_layer_index(weights, layer);
    const LlamaLayerWeights& L = weights.text.layers[layer];
    at::Tensor cos, sin;
    rope_cos_sin(config.text, positions_rows, x_in_rows.scalar_type(), x_in_rows.device(), cos, sin);
    at::Tensor h = rms_norm(x_in_rows, L.input_norm, config.text.rms_norm_eps);
    at::Tensor q;
    layer_qkv(L, config.text, h, cos, sin, &q, nullptr, nullptr);
    return q;  // [H,R,D]
}

}  // namespace dl
