// FastV: keep the B image tokens that receive the most attention at layer K-1.
//
// Score = layer K-1's softmax probabilities averaged over heads, from the last query row
// (config.fastv_score = "last", what the released code does) or averaged over all query rows of the
// causal matrix ("mean", what the paper's text describes), restricted to the image columns.
// B = config.budget_for(N) (round(N * (1 - R)) for a ratio). Ties go to the lower index.
#include "core/pruning/pruner.h"

#include "core/common.h"

namespace dl {

namespace {

class PrunerFastV : public Pruner {
public:
    const char* name() const override { return "fastv"; }
    PruneNeeds needs(const PruneConfig& c) const override {
        PruneNeeds n;
        n.attn_last = c.fastv_score != "mean";
        n.attn_mean = c.fastv_score == "mean";
        return n;
    }

    Selection select(const PruneInputs& in, const PruneConfig& config) const override {
        const auto t0 = std::chrono::steady_clock::now();
        prune_check_inputs(in, "fastv");
        const bool use_mean = config.fastv_score == "mean";
        const at::Tensor& attn = use_mean ? in.attn_mean : in.attn_last;
        if (!attn.defined() && in.num_image > 0) {
            throw Error(str_cat("fastv: input '", use_mean ? "attn_mean" : "attn_last",
                                "' is required for fastv_score=", config.fastv_score));
        }
        Selection sel;
        sel.result = prune_new_result("fastv", in, config);
        PruningResult& r = sel.result;
        prune_fill_token_scores(in, config, r);  // fills fastv_score [N] (and key_l1 if keys given)
        std::vector<int> kept = prune_topk(r.fastv_score, r.budget, /*largest=*/true);
        sel.keep = prune_build_keep(in, std::move(kept), r);
        r.selection_ms = prune_elapsed_ms(t0);
        return sel;
    }
};

}  // namespace

std::unique_ptr<Pruner> make_pruner_fastv() { return std::make_unique<PrunerFastV>(); }

}  // namespace dl
