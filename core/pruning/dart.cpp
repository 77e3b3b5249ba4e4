// DART (Wen et al. 2025): keep the image tokens that duplicate the pivots least.
//
// Default = the released code's selection (shared/specs/dart.md, get_retained_image_token):
//   img_piv = top P_img key-L1 scores in the image span [s0, s0+N)      (absolute positions)
//   txt_piv = top P_txt key-L1 scores among the tokens after the span [s0+N, S)
//   order   = CPython iteration order of set(img_piv + txt_piv)          (pyset_order.h)
//   pool    = image span minus img_piv, ascending; kept = img_piv
//   for p in order: pick the q pool tokens with the lowest cos(Hn[p], Hn[c]); they leave the pool
// with q = B // (P_img + P_txt), so P_img + (P_img + P_txt) * q image tokens survive (196/132/68
// for B = 192/128/64, N = 576). Where the reference is silent or crashes we define:
//   - scores in the compute dtype by default (dart_scores = "compute"), as the reference computes
//     them in fp16 on a GPU: key/value L1 norms and cosines accumulate in float32 and are rounded
//     to the dtype of the keys / hidden states (f16, bf16; a no-op in f32), so the same ties arise;
//     dart_scores = "f32" ranks the unrounded float32 values. eps 1e-8 on each norm; ties in the q lowest go
//     to the lower position (torch.topk's tie order is unspecified); NaN similarities count as
//     lowest (torch.topk(-cos) ranks NaN first). Pivot ranking ties also go to the lower position.
//   - the reference iterates its candidate pool as a Python set; that equals ascending order unless
//     the span wraps the hash table, and only matters for exact ties, so we use ascending order.
//   - ratio mode: q = floor(N * (1 - R) / P) as the reference computes it (not round()); the
//     reported nominal budget is still config.budget_for(N).
//   - B >= N keeps every image token (the reference would run out of candidates).
//   - LLaVA-NeXT: the span is the whole packed image (base, tiles, image_newline tokens); newline
//     tokens are image tokens like the others (pivots, picks, pruned), as the reference's NeXT
//     path does. Its quota is min(B, N - P_img) // P, equal to B // P whenever B <= N - P_img
//     (its default B = 320 keeps 324); for N - P_img < B < N we keep our definition below.
//   - fewer image/text tokens than P_img/P_txt: use what exists, and q divides by the pivots that
//     exist. Pool exhausted before the last pivot (reference: topk error): the pivot takes what is
//     left, later pivots take nothing. No pivot at all (P_img = 0 and no text after the image):
//     nothing to measure duplication against, so no image token is kept.
//   - q = 0 (B < P): only the image pivots are kept.
// Options: pivot_criterion k-norm / v-norm (L1 of the key / value row, max or min), attn-max/min
// (attention received at layer K-1: attn_last, or attn_mean when fastv_score = "mean"), random
// (seeded by config.seed); pivot_order "score" processes img_piv then txt_piv, each best first,
// i.e. the list before the reference turns it into a set.
#include "core/pruning/pruner.h"

#include <cmath>

#include "core/common.h"
#include "core/pruning/pyset_order.h"

namespace dl {

namespace {

// A parsed pivot_criterion: seeded random choice, or ranked by a score (largest or smallest first).
struct dart_criterion {
    bool random = false;
    bool largest = true;
};

dart_criterion dart_parse_criterion(const std::string& c) {
    dart_criterion d;
    d.random = c == "random";
    d.largest = c.size() < 4 || c.compare(c.size() - 4, 4, "-min") != 0;
    return d;
}

// Float32 scores rounded to `like`'s dtype when the config ranks in the compute dtype.
std::vector<float> dart_round(std::vector<float> v, const at::Tensor& like, const PruneConfig& c) {
    if (c.dart_scores != "compute" || like.scalar_type() == at::kFloat || v.empty()) return v;
    at::Tensor t = at::from_blob(v.data(), {int64_t(v.size())}, at::kFloat).to(like.scalar_type()).to(at::kFloat);
    std::copy(t.data_ptr<float>(), t.data_ptr<float>() + t.numel(), v.begin());
    return v;
}

// Per-token pivot scores for positions [begin, end) under the criterion.
std::vector<float> dart_pivot_scores(const PruneInputs& in, const PruneConfig& c, int begin, int end) {
    if (end <= begin) return {};
    const std::string& crit = c.pivot_criterion;
    if (crit == "k-norm-max" || crit == "k-norm-min") {
        if (!in.keys.defined()) throw Error("dart: input 'keys' is required for " + crit + " pivots");
        return dart_round(prune_row_l1(in.keys, begin, end, float(in.kv_repeat)), in.keys, c);
    }
    if (crit == "v-norm-max" || crit == "v-norm-min") {
        if (!in.values.defined()) throw Error("dart: input 'values' is required for " + crit + " pivots");
        return dart_round(prune_row_l1(in.values, begin, end, float(in.kv_repeat)), in.values, c);
    }
    if (crit == "attn-max" || crit == "attn-min") {
        const bool mean = c.fastv_score == "mean";
        const at::Tensor& a = mean ? in.attn_mean : in.attn_last;
        if (!a.defined()) {
            throw Error(str_cat("dart: input '", mean ? "attn_mean" : "attn_last", "' is required for ",
                                crit, " pivots"));
        }
        return prune_to_vector(a.slice(0, begin, end));
    }
    throw Error("dart: unknown pivot_criterion '" + crit + "'");
}

// Rows of x [R, d] scaled to unit L2 norm (eps 1e-8 on the norm, computed in float32), in `dtype`.
at::Tensor dart_unit(const at::Tensor& rows, at::ScalarType dtype) {
    at::Tensor x = rows.to(at::kFloat);                                   // [R, d]
    at::Tensor norm = x.norm(2, {1}, /*keepdim=*/true).clamp_min_(1e-8);  // [R, 1]
    return (x / norm).to(dtype);
}

// Unit rows of Hn at `rows` (absolute positions) in `dtype`: [rows.size(), d].
at::Tensor dart_unit_rows(const at::Tensor& hn, const std::vector<int64_t>& rows, at::ScalarType dtype) {
    at::Tensor idx = at::tensor(rows, at::TensorOptions().dtype(at::kLong)).to(hn.device());
    return dart_unit(hn.index_select(0, idx), dtype);
}

class PrunerDart : public Pruner {
public:
    const char* name() const override { return "dart"; }
    // Hn always (the cosines); values for v-norm pivots; attention for attn pivots, from the
    // row fastv_score names.
    PruneNeeds needs(const PruneConfig& c) const override {
        PruneNeeds n;
        n.hidden_normed = true;
        n.values = c.pivot_criterion.rfind("v-norm", 0) == 0;
        const bool attn = c.pivot_criterion.rfind("attn-", 0) == 0;
        n.attn_last = attn && c.fastv_score != "mean";
        n.attn_mean = attn && c.fastv_score == "mean";
        return n;
    }
    void check_config(const PruneConfig& c) const override {
        if (c.pivots_image + c.pivots_text == 0)
            throw Error("prune config: pivots_image + pivots_text must be >= 1 for dart");
    }

    Selection select(const PruneInputs& in, const PruneConfig& c) const override {
        const auto t0 = std::chrono::steady_clock::now();
        prune_check_inputs(in, "dart");
        const int s0 = in.image_start, n = in.num_image;
        const int text_begin = s0 + n, n_text = in.seq_len - text_begin;
        Selection sel;
        sel.result = prune_new_result("dart", in, c);
        PruningResult& r = sel.result;
        prune_fill_token_scores(in, c, r);
        if (n == 0) {
            sel.keep = prune_build_keep(in, {}, r);
            r.selection_ms = prune_elapsed_ms(t0);
            return sel;
        }
        if (!in.hidden_normed.defined()) throw Error("dart: input 'hidden_normed' is required");

        // --- pivots: rank order within each group, then processing order
        const int p_img = std::min(std::max(c.pivots_image, 0), n);
        const int p_txt = std::min(std::max(c.pivots_text, 0), n_text);
        const dart_criterion crit = dart_parse_criterion(c.pivot_criterion);
        std::vector<int> img_rank, txt_rank;  // relative to their group
        if (crit.random) {
            img_rank = prune_random_choice(n, p_img, c.seed);
            txt_rank = prune_random_choice(n_text, p_txt, c.seed ^ 0x9E3779B97F4A7C15ull);
        } else {
            // k-norm image scores are what prune_fill_token_scores just stored in r.key_l1.
            const bool k_norm = c.pivot_criterion.rfind("k-norm", 0) == 0 && r.key_l1.size() == size_t(n);
            img_rank = prune_topk(k_norm ? dart_round(r.key_l1, in.keys, c) : dart_pivot_scores(in, c, s0, s0 + n),
                                  p_img, crit.largest);
            txt_rank = prune_topk(dart_pivot_scores(in, c, text_begin, in.seq_len), p_txt, crit.largest);
        }
        std::vector<int64_t> pivot_list;  // absolute positions: img_piv + txt_piv
        for (int i : img_rank) pivot_list.push_back(int64_t(s0) + i);
        for (int i : txt_rank) pivot_list.push_back(int64_t(text_begin) + i);
        const std::vector<int64_t> order =
            c.pivot_order == "score" ? pivot_list : pyset_iteration_order(pivot_list);
        for (size_t k = 0; k < order.size(); k++) {
            Pivot pv;
            pv.order = int(k);
            if (order[k] < text_begin) {
                pv.role = "image";
                pv.index = int(order[k] - s0);
                r.pivot_image_indices.push_back(pv.index);
            } else {
                pv.role = "text";
                pv.index = int(order[k]);
                r.pivot_text_indices.push_back(pv.index);
            }
            r.pivots.push_back(pv);
        }

        // --- cosine of every pivot with every image token: [P, d] x [d, N] -> [P, N]
        const int n_piv = int(order.size());
        std::vector<float> sim;  // row-major [P, N]
        if (n_piv > 0) {
            // Compute mode: unit rows and their products in Hn's dtype (float32 accumulation,
            // rounded results), as the reference's cosine_similarity in fp16.
            const at::ScalarType st = c.dart_scores == "compute" ? in.hidden_normed.scalar_type() : at::kFloat;
            at::Tensor img_unit = dart_unit(in.hidden_normed.narrow(0, s0, n), st);  // [N, d]
            at::Tensor piv_unit = dart_unit_rows(in.hidden_normed, order, st);       // [P, d]
            sim = prune_to_vector(at::mm(piv_unit, img_unit.t()));
        }
        r.pivot_similarity.assign(size_t(n_piv), {});
        for (int p = 0; p < n_piv; p++) {
            r.pivot_similarity[size_t(p)].assign(sim.begin() + size_t(p) * n, sim.begin() + size_t(p + 1) * n);
        }
        std::vector<bool> is_img_pivot(static_cast<size_t>(n), false);
        for (int i : img_rank) is_img_pivot[size_t(i)] = true;
        if (n_piv > 0) {
            r.dup_max.assign(size_t(n), -INFINITY);
            for (int p = 0; p < n_piv; p++) {
                for (int i = 0; i < n; i++) {
                    r.dup_max[size_t(i)] = std::max(r.dup_max[size_t(i)], sim[size_t(p) * n + i]);
                }
            }
            for (int i = 0; i < n; i++) {
                if (is_img_pivot[size_t(i)]) r.dup_max[size_t(i)] = 1.0f;
            }
        }

        // --- quota and greedy picks
        std::vector<int> kept;
        if (r.budget >= n) {
            for (int i = 0; i < n; i++) kept.push_back(i);
        } else if (n_piv > 0) {
            int quota;
            if (c.keep >= 0) {
                quota = std::min(c.keep, n) / n_piv;
            } else {  // ratio: the reference divides the unrounded N*(1-R)
                quota = int(std::floor(double(n) * (1.0 - c.ratio) / double(n_piv)));
            }
            kept = img_rank;
            std::vector<int> pool;  // ascending, relative
            for (int i = 0; i < n; i++) {
                if (!is_img_pivot[size_t(i)]) pool.push_back(i);
            }
            for (int p = 0; p < n_piv && !pool.empty() && quota > 0; p++) {
                std::vector<float> pool_sim(pool.size());
                for (size_t j = 0; j < pool.size(); j++) {
                    const float s = sim[size_t(p) * n + size_t(pool[j])];
                    pool_sim[j] = std::isnan(s) ? -INFINITY : s;
                }
                std::vector<int> pick = prune_topk(pool_sim, quota, /*largest=*/false);  // pool slots
                std::vector<bool> picked(pool.size(), false);
                for (int j : pick) {
                    picked[size_t(j)] = true;
                    kept.push_back(pool[size_t(j)]);
                }
                std::vector<int> rest;
                for (size_t j = 0; j < pool.size(); j++) {
                    if (!picked[j]) rest.push_back(pool[j]);
                }
                pool.swap(rest);
            }
        }
        sel.keep = prune_build_keep(in, std::move(kept), r);
        r.selection_ms = prune_elapsed_ms(t0);
        return sel;
    }
};

}  // namespace

std::unique_ptr<Pruner> make_pruner_dart() { return std::make_unique<PrunerDart>(); }

}  // namespace dl
