// Vision-token pruning methods: one interface, one file per method, pure functions over tensors.
//
// The model runs layers 0..K-1 on the full sequence, hands the method what layer K-1 produced
// (PruneInputs), and the method returns which absolute positions survive (Selection.keep) plus
// everything the UI shows about the choice (PruningResult from core/api.h). Methods never touch
// the model: the same inputs always give the same selection, which is what the tests rely on.
// Methods: none (keep all), dart (duplication-aware, the reference's exact selection by default),
// fastv (top attention received), random (seeded). Inputs may live on any device; the small
// per-token vectors are copied to the CPU, the O(P*N*d) similarity runs where Hn lives.
// Adding a method: its file (a Pruner that says what it needs() and select()s), its factory's
// declaration at the end of this header and one line in the registry table of pruner.cpp.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <chrono>
#include <string>
#include <vector>

#include "core/api.h"

namespace dl {

struct PruneInputs {
    int image_start = 0;        // s0: first image token position in the expanded sequence
    int num_image = 0;          // N
    int seq_len = 0;            // S
    at::Tensor keys;            // [S, Hkv*D] layer K-1 keys after RoPE (cache layout, KV heads not repeated)
    at::Tensor values;          // [S, Hkv*D] layer K-1 values
    int kv_repeat = 1;          // H / Hkv: the reference repeats KV heads before its norms
    at::Tensor hidden_normed;   // [S, d] layer K-1 output through the model's FINAL RMSNorm
    at::Tensor attn_last;       // [S] softmax probs of the last query row, mean over heads (optional)
    at::Tensor attn_mean;       // [S] mean over heads and all query rows of the causal probs (optional)
};

struct Selection {
    std::vector<int64_t> keep;  // absolute positions kept, ascending (all non-image + kept image)
    PruningResult result;       // as core/api.h documents; selection_ms = time of select()
};

// The optional PruneInputs a method reads for a config. The model computes only these (keys and
// the span are always given: every method reports key_l1), so the session never needs to know
// which method is which.
struct PruneNeeds {
    bool values = false;         // layer K-1's value rows
    bool hidden_normed = false;  // layer K-1's output through the final RMSNorm
    bool attn_last = false;      // attention probabilities of the last query row (O(S*d))
    bool attn_mean = false;      // mean over all query rows (O(S^2*d))
};

class Pruner {
public:
    virtual ~Pruner() = default;
    virtual const char* name() const = 0;
    // What select() reads for this config (default: keys only).
    virtual PruneNeeds needs(const PruneConfig& config) const { return PruneNeeds(); }
    // Checks of the method's own parameters, beyond validate_prune_config's shared ones; throws
    // dl::Error naming the parameter.
    virtual void check_config(const PruneConfig& config) const {}
    // Throws dl::Error naming the input at fault (shape, span out of range, missing tensor).
    virtual Selection select(const PruneInputs& inputs, const PruneConfig& config) const = 0;
};

// none | dart | fastv | random; throws dl::Error listing the valid names otherwise.
std::unique_ptr<Pruner> make_pruner(const std::string& method);
// The names make_pruner accepts, in display order.
const std::vector<std::string>& pruner_names();

// Throws dl::Error naming the parameter: unknown method; layer outside [1, num_layers-1] for a
// pruning method; keep < -1; ratio (when not -1) outside [0,1]; pivots < 0; unknown
// pivot_criterion / pivot_order / fastv_score / dart_scores; then the method's own check_config
// (dart: pivots_image + pivots_text >= 1).
void validate_prune_config(const PruneConfig& config, int num_layers);

// --- helpers shared by the methods (pruner.cpp) -------------------------------------------------

// Checks s0/N/S and the shapes of the defined tensors; `method` prefixes the message.
void prune_check_inputs(const PruneInputs& in, const char* method);
// A [S] or [S, ...] tensor as a CPU float vector (rows reduced by the caller beforehand).
std::vector<float> prune_to_vector(const at::Tensor& t);
// L1 norm of each row of x[begin, end) (x is [S, C]) times `scale`, as a CPU vector.
std::vector<float> prune_row_l1(const at::Tensor& x, int begin, int end, float scale);
// Indices of the k best entries of score (largest or smallest); ties go to the lower index;
// NaN ranks below every number. Result in rank order (best first). k is clamped to size.
std::vector<int> prune_topk(const std::vector<float>& score, int k, bool largest);
// k distinct values drawn uniformly from [0, n) with a portable generator seeded by `seed`
// (mt19937_64 + rejection sampling, so results do not depend on the standard library).
std::vector<int> prune_random_choice(int n, int k, uint64_t seed);
// keep = [0, s0) + (s0 + kept_image) + [s0+N, S), ascending; also fills result.kept_image_indices
// (sorted) and kept_count.
std::vector<int64_t> prune_build_keep(const PruneInputs& in, std::vector<int> kept_image,
                                      PruningResult& result);
// Fills result.key_l1 (when keys are given) and result.fastv_score (from attn_last or attn_mean per
// config.fastv_score, when given) for the image span: the per-token numbers every method can show.
void prune_fill_token_scores(const PruneInputs& in, const PruneConfig& config, PruningResult& result);
// A result with method, layer, N and the nominal budget filled in (what every method starts from).
PruningResult prune_new_result(const char* method, const PruneInputs& in, const PruneConfig& config);
// Milliseconds since `start` (steady clock).
double prune_elapsed_ms(std::chrono::steady_clock::time_point start);

// Factories of the individual methods (one per file; the registry table in pruner.cpp lists them).
std::unique_ptr<Pruner> make_pruner_none();
std::unique_ptr<Pruner> make_pruner_dart();
std::unique_ptr<Pruner> make_pruner_fastv();
std::unique_ptr<Pruner> make_pruner_random();

}  // namespace dl
