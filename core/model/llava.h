// LlavaModel: a loaded llava-hf directory (config + weights on a device in a compute dtype) and
// the glue between the vision tower and the decoder (token embedding, image merge, prefill, step).
//
// Device/dtype rules (dl::LoadOptions): device auto picks CUDA when available, else CPU; dtype auto
// is f32 on CPU and f16 on CUDA; f16 on CPU is refused (LibTorch 1.13 has no f16 matmul on CPU).
// threads: set_compute_threads(threads), 0 = every hardware thread. Loading also pins glibc's
// malloc to reuse freed activation memory instead of page-faulting fresh mmap()s
// (DARTLENS_DEFAULT_MALLOC=1 opts out) and runs a 4-token warm-up through every decoder layer,
// so the first timed run is not paying one-time initialisation.
#pragma once

#include <ATen/ATen.h>
#include <atomic>
#include <string>
#include <vector>

#include "core/api.h"
#include "core/io/config.h"
#include "core/model/llama.h"
#include "core/io/weights.h"

namespace dl {

// "auto"/"cpu"/"cuda"/"cuda:N" -> device; throws dl::Error for unknown names or missing CUDA.
at::Device parse_device(const std::string& name);
// "auto"/"f32"/"bf16"/"f16" (also float32/bfloat16/float16) for `device`; f16 on CPU -> dl::Error.
at::ScalarType parse_compute_dtype(const std::string& name, at::Device device);
std::string dtype_name(at::ScalarType dtype);  // "f32" | "bf16" | "f16"
// LibTorch's intra-op thread count for the calling thread (OpenMP counts are per thread):
// `threads` > 0 as given, otherwise every hardware thread. Returns the count set.
// at::set_num_threads is called only when the count differs: each call rebuilds the thread pools
// even for an unchanged count, which costs several ms and slows the ops that follow.
int set_compute_threads(int threads);

class LlavaModel {
public:
    // Loads config.json and the safetensors of `dir`. Throws dl::Error naming the file at fault.
    LlavaModel(const std::string& dir, const LoadOptions& options);

    const LlavaConfig& config() const { return config_; }
    const LlavaWeights& weights() const { return weights_; }
    const GenerationConfig& generation_config() const { return generation_; }
    at::Device device() const { return device_; }
    at::ScalarType dtype() const { return dtype_; }
    const ModelInfo& info() const { return info_; }

    // ids [T] int64 (any device) -> [T,d] in the compute dtype on the device. Throws for ids
    // outside the vocabulary (the image token must be merged, not embedded).
    at::Tensor embed_tokens(const at::Tensor& ids) const;
    at::Tensor embed_tokens(const std::vector<int>& ids) const;
    // embeds_of_ids [T,d] with the image placeholder at row image_token_pos, image_features [N,d]
    // -> [T-1+N, d]: rows before, the N features, rows after.
    at::Tensor merge_image(const at::Tensor& embeds_of_ids, int64_t image_token_pos,
                           const at::Tensor& image_features) const;
    // pixel_values [1,3,H,W] float32 -> [N,d] (see vision.h). LLaVA-NeXT: [1+tiles,3,S,S] of a
    // picture of `height` x `width` (needed to unpad) -> the packed span.
    at::Tensor encode_image(const at::Tensor& pixel_values, int height = 0, int width = 0) const;

    // An empty cache for this model with room for `capacity` tokens.
    KVCache new_cache(int64_t capacity) const;
    // One capacity per decoder layer (0: allocated on first use).
    KVCache new_cache(const std::vector<int64_t>& capacities) const;
    // Runs every layer on x [S,d] at positions [S] (appending to `cache`) and returns the last
    // row's logits [V] float32.
    at::Tensor forward_last_logits(at::Tensor x, const at::Tensor& positions, KVCache& cache,
                                   const std::atomic<bool>* cancel = nullptr) const;
    // One decode step: token at `position` -> logits [V] float32.
    // One decode step for a token that is already on the model's device ([1] int64, e.g. the
    // argmax of the previous logits): no host synchronisation inside.
    at::Tensor step(const at::Tensor& token, int64_t position, KVCache& cache,
                    const std::atomic<bool>* cancel = nullptr) const;
    at::Tensor step(int token, int64_t position, KVCache& cache,
                    const std::atomic<bool>* cancel = nullptr) const;
    // int64 tensor of positions on the model's device.
    at::Tensor positions(const std::vector<int64_t>& pos) const;
    at::Tensor positions_range(int64_t begin, int64_t end) const;  // begin..end-1

private:
    std::string dir_;
    LlavaConfig config_;
    GenerationConfig generation_;
    LlavaWeights weights_;
    at::Device device_ = at::Device(at::kCPU);
    at::ScalarType dtype_ = at::kFloat;
    ModelInfo info_;
};

}  // namespace dl
