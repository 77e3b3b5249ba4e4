// The "none" method: keeps every token. It still reports key_l1 / attention scores when the
// model supplied them, so the overlay can show them for an unpruned run.
#include "core/pruning/pruner.h"

namespace dl {

namespace {

class PrunerNone : public Pruner {
public:
    const char* name() const override { return "none"; }
    Selection select(const PruneInputs& in, const PruneConfig& config) const override {
        const auto t0 = std::chrono::steady_clock::now();
        prune_check_inputs(in, "none");
        Selection sel;
        sel.result = prune_new_result("none", in, config);
        PruningResult& r = sel.result;
        std::vector<int> all(size_t(in.num_image));
        for (int i = 0; i < in.num_image; i++) all[size_t(i)] = i;
        sel.keep = prune_build_keep(in, std::move(all), r);
        prune_fill_token_scores(in, config, r);
        r.selection_ms = prune_elapsed_ms(t0);
        return sel;
    }
};

}  // namespace

std::unique_ptr<Pruner> make_pruner_none() { return std::make_unique<PrunerNone>(); }

}  // namespace dl
