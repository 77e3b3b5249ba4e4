// Random baseline: keep B = config.budget_for(N) image tokens drawn uniformly without replacement,
// seeded by config.seed (same seed, same N, same B -> same selection on every platform).
#include "core/pruning/pruner.h"

namespace dl {

namespace {

class PrunerRandom : public Pruner {
public:
    const char* name() const override { return "random"; }
    Selection select(const PruneInputs& in, const PruneConfig& config) const override {
        const auto t0 = std::chrono::steady_clock::now();
        prune_check_inputs(in, "random");
        Selection sel;
        sel.result = prune_new_result("random", in, config);
        PruningResult& r = sel.result;
        std::vector<int> kept = prune_random_choice(in.num_image, r.budget, config.seed);
        sel.keep = prune_build_keep(in, std::move(kept), r);
        prune_fill_token_scores(in, config, r);
        r.selection_ms = prune_elapsed_ms(t0);
        return sel;
    }
};

}  // namespace

std::unique_ptr<Pruner> make_pruner_random() { return std::make_unique<PrunerRandom>(); }

}  // namespace dl
