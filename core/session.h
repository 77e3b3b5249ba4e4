// The Session of the engine's public API (core/api.h): the model, the current image and prompt,
// and the prefix cache. Torch-free; implemented in core/session.cpp.
#pragma once

#include "core/api_types.h"

namespace dl {

class Session {
public:
    Session();
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Loads a llava-hf directory. Throws dl::Error naming the file/tensor at fault. Progress is
    // reported per tensor converted and per layer warmed up; a cancel stops at the next tensor or
    // layer and keeps the model loaded before (if any).
    ModelInfo load_model(const std::string& dir, const LoadOptions& options,
                         const ProgressFn& progress = {}, const std::atomic<bool>* cancel = nullptr);
    bool has_model() const;
    const ModelInfo& model_info() const;

    // Sets image + question and computes the vision features (progress per CLIP layer); the
    // unpruned prefill trunk is built lazily by preview() or run(). Returns the tokenised prompt.
    // Unchanged inputs keep the prefix cache.
    PromptInfo prepare(const RunRequest& request, const ProgressFn& progress = {},
                       const std::atomic<bool>* cancel = nullptr);
    ImageGeometry geometry() const;
    // The prepared image as the vision tower sees it: float32 [1,3,H,W] values (C order) and
    // their shape, after resize/crop or pad and CLIP normalisation. Empty before prepare().
    std::vector<float> pixel_values(std::vector<int64_t>* shape = nullptr) const;

    // Selection only (no generation), from the prefix cache: what the overlay needs, fast. The
    // first call after new inputs builds the unpruned trunk (every layer on the full prompt):
    // progress per layer, and a cancel throws dl::Cancelled and leaves no trunk behind.
    PruningResult preview(const PruneConfig& config, const ProgressFn& progress = {},
                          const std::atomic<bool>* cancel = nullptr);

    // Full run of one method on the prepared inputs. With use_prefix_cache (the default) vision
    // features and layers < K come from the cache and timing_ms reports what a cold run costs
    // (per-stage times measured when the cache was filled); without it everything is recomputed
    // from the pixels (vision, layers < K on the full sequence, selection, layers >= K pruned) —
    // what `bench` times. A cancel before decoding throws dl::Cancelled; a cancel during decode
    // returns the run so far with cancelled = true (the answer's first tokens are worth showing).
    MethodRun run(const PruneConfig& config, int max_new_tokens, const ProgressFn& progress = {},
                  const std::atomic<bool>* cancel = nullptr, bool use_prefix_cache = true);

    // Drops cached vision features and trunk (e.g. to time a cold run).
    void clear_cache();

    struct Impl;
private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace dl
