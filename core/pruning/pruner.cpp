// Pruning registry, config validation and the helpers every method shares (ranking, budgets,
// building the kept-position list). The methods themselves live in none/dart/fastv/random.cpp.
#include "core/pruning/pruner.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/common.h"

namespace dl {

namespace {

struct PrunerFactory {
    const char* name;
    std::unique_ptr<Pruner> (*make)();
};

// The registry: one line per method, in display order.
const PrunerFactory kPruners[] = {
    {"none", make_pruner_none},
    {"dart", make_pruner_dart},
    {"fastv", make_pruner_fastv},
    {"random", make_pruner_random},
};

}  // namespace

const std::vector<std::string>& pruner_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const PrunerFactory& f : kPruners) v.push_back(f.name);
        return v;
    }();
    return names;
}

static std::string join_names(const std::vector<std::string>& names) {
    std::string s;
    for (size_t i = 0; i < names.size(); i++) s += (i ? "|" : "") + names[i];
    return s;
}

std::unique_ptr<Pruner> make_pruner(const std::string& method) {
    for (const PrunerFactory& f : kPruners)
        if (method == f.name) return f.make();
    throw Error(str_cat("prune config: unknown method '", method, "' (valid: ",
                        join_names(pruner_names()), ")"));
}

void validate_prune_config(const PruneConfig& c, int num_layers) {
    const std::unique_ptr<Pruner> pruner = make_pruner(c.method);  // throws on an unknown name
    static const std::vector<std::string> criteria = {"k-norm-max", "k-norm-min", "v-norm-max",
                                                      "v-norm-min", "attn-max",   "attn-min",
                                                      "random"};
    static const std::vector<std::string> orders = {"reference", "score"};
    static const std::vector<std::string> scores = {"last", "mean"};
    static const std::vector<std::string> dart_scores = {"compute", "f32"};
    auto check_name = [](const std::string& value, const std::vector<std::string>& valid,
                         const char* param) {
        if (std::find(valid.begin(), valid.end(), value) == valid.end()) {
            throw Error(str_cat("prune config: unknown ", param, " '", value, "' (valid: ",
                                join_names(valid), ")"));
        }
    };
    check_name(c.pivot_criterion, criteria, "pivot_criterion");
    check_name(c.pivot_order, orders, "pivot_order");
    check_name(c.fastv_score, scores, "fastv_score");
    check_name(c.dart_scores, dart_scores, "dart_scores");
    if (c.method != "none" && (c.layer < 1 || c.layer > num_layers - 1)) {
        throw Error(str_cat("prune config: layer K=", c.layer, " out of [1, ", num_layers - 1,
                            "] (the method needs layer K-1's outputs and at least one layer after)"));
    }
    if (c.keep < -1) {
        throw Error(str_cat("prune config: keep=", c.keep, " must be >= 0 (or -1 to use ratio)"));
    }
    if (c.keep < 0 && c.ratio != -1 && !(c.ratio >= 0 && c.ratio <= 1)) {
        throw Error(str_cat("prune config: ratio=", c.ratio, " outside [0, 1] (or -1 for none)"));
    }
    if (c.pivots_image < 0) {
        throw Error(str_cat("prune config: pivots_image=", c.pivots_image, " must be >= 0"));
    }
    if (c.pivots_text < 0) {
        throw Error(str_cat("prune config: pivots_text=", c.pivots_text, " must be >= 0"));
    }
    pruner->check_config(c);
}

void prune_check_inputs(const PruneInputs& in, const char* method) {
    if (in.seq_len < 0 || in.num_image < 0 || in.image_start < 0 ||
        int64_t(in.image_start) + in.num_image > in.seq_len) {
        throw Error(str_cat(method, ": image span [", in.image_start, ", ",
                            int64_t(in.image_start) + in.num_image, ") outside sequence of length ",
                            in.seq_len));
    }
    auto check_rows = [&](const at::Tensor& t, const char* name, int64_t dims) {
        if (!t.defined()) return;
        if (t.dim() != dims || t.size(0) != in.seq_len) {
            throw Error(str_cat(method, ": input '", name, "' has shape ", t.sizes(), ", expected ",
                                dims == 1 ? "[S]" : "[S, C]", " with S=", in.seq_len));
        }
    };
    check_rows(in.keys, "keys", 2);
    check_rows(in.values, "values", 2);
    check_rows(in.hidden_normed, "hidden_normed", 2);
    check_rows(in.attn_last, "attn_last", 1);
    check_rows(in.attn_mean, "attn_mean", 1);
    if (in.kv_repeat < 1) throw Error(str_cat(method, ": kv_repeat=", in.kv_repeat, " must be >= 1"));
}

std::vector<float> prune_to_vector(const at::Tensor& t) {
    at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous().reshape({-1});
    const float* p = c.data_ptr<float>();
    return std::vector<float>(p, p + c.numel());
}

std::vector<float> prune_row_l1(const at::Tensor& x, int begin, int end, float scale) {
    if (end <= begin) return {};
    // [end-begin, C] -> [end-begin]; accumulate in float32 whatever the storage dtype
    at::Tensor rows = x.slice(0, begin, end).to(at::kFloat);
    return prune_to_vector(rows.abs().sum(1) * scale);
}

std::vector<int> prune_topk(const std::vector<float>& score, int k, bool largest) {
    const int n = int(score.size());
    k = std::max(0, std::min(k, n));
    std::vector<int> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    auto better = [&](int a, int b) {
        const float sa = score[size_t(a)], sb = score[size_t(b)];
        const bool na = std::isnan(sa), nb = std::isnan(sb);
        if (na != nb) return nb;  // numbers before NaN
        if (!na && sa != sb) return largest ? sa > sb : sa < sb;
        return a < b;
    };
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
    idx.resize(size_t(k));
    return idx;
}

std::vector<int> prune_random_choice(int n, int k, uint64_t seed) {
    k = std::max(0, std::min(k, n));
    std::mt19937_64 gen(seed);
    // unbiased draw from [0, bound): reject the top partial block of the 64-bit range
    auto draw = [&](uint64_t bound) {
        const uint64_t limit = UINT64_MAX - (UINT64_MAX % bound + 1) % bound;
        uint64_t r;
        do { r = gen(); } while (r > limit);
        return r % bound;
    };
    std::vector<int> perm(static_cast<size_t>(n));
    std::iota(perm.begin(), perm.end(), 0);
    for (int i = 0; i < k; i++) {  // partial Fisher-Yates
        const int j = i + int(draw(uint64_t(n - i)));
        std::swap(perm[size_t(i)], perm[size_t(j)]);
    }
    perm.resize(size_t(k));
    return perm;
}

std::vector<int64_t> prune_build_keep(const PruneInputs& in, std::vector<int> kept_image,
                                      PruningResult& result) {
    std::sort(kept_image.begin(), kept_image.end());
    kept_image.erase(std::unique(kept_image.begin(), kept_image.end()), kept_image.end());
    std::vector<int64_t> keep;
    keep.reserve(size_t(in.seq_len - in.num_image) + kept_image.size());
    for (int64_t p = 0; p < in.image_start; p++) keep.push_back(p);
    for (int r : kept_image) keep.push_back(int64_t(in.image_start) + r);
    for (int64_t p = int64_t(in.image_start) + in.num_image; p < in.seq_len; p++) keep.push_back(p);
    result.kept_count = int(kept_image.size());
    result.kept_image_indices = std::move(kept_image);
    return keep;
}

void prune_fill_token_scores(const PruneInputs& in, const PruneConfig& config, PruningResult& result) {
    const int s0 = in.image_start, n = in.num_image;
    if (n == 0) return;
    if (in.keys.defined()) result.key_l1 = prune_row_l1(in.keys, s0, s0 + n, float(in.kv_repeat));
    const at::Tensor& attn = config.fastv_score == "mean" ? in.attn_mean : in.attn_last;
    if (attn.defined()) result.fastv_score = prune_to_vector(attn.slice(0, s0, s0 + n));
}

PruningResult prune_new_result(const char* method, const PruneInputs& in, const PruneConfig& config) {
    PruningResult r;
    r.method = method;
    r.layer = config.layer;
    r.num_image_tokens = in.num_image;
    r.budget = std::string(method) == "none" ? in.num_image : config.budget_for(in.num_image);
    return r;
}

double prune_elapsed_ms(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace dl
