// LlavaModel: loading, options, embeddings, image merge, prefill and decode steps.
#include "core/model/llava.h"

#include <cstdlib>
#include <filesystem>
#include <thread>

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>
#include <torch/cuda.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/common.h"
#include "core/progress.h"
#include "core/io/safetensors.h"
#include "core/model/vision.h"

namespace dl {

// Number of usable CUDA devices, without LibTorch's multi-line "CUDA initialization" warning that
// a CUDA build prints on a machine without a driver (the caller says it in one line).
static int cuda_device_count_quiet() {
#if DARTLENS_WITH_CUDA
    struct Quiet : c10::WarningHandler {
        void process(const c10::Warning&) override {}
    } quiet;
    c10::WarningUtils::WarningHandlerGuard guard(&quiet);
    try {
        return int(torch::cuda::device_count());
    } catch (const std::exception&) {
        return 0;
    }
#else
    return 0;
#endif
}

at::Device parse_device(const std::string& name) {
    if (name.empty() || name == "auto")
        return cuda_device_count_quiet() > 0 ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
    if (name == "cpu") return at::Device(at::kCPU);
    if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
#if !DARTLENS_WITH_CUDA
        throw Error(str_cat("device '", name, "': this build of DartLens uses a LibTorch without CUDA (",
                            "build with scripts/setup.sh --torch pip for the CUDA one)"));
#endif
        const int count = cuda_device_count_quiet();
        if (count == 0)
            throw Error(str_cat("device '", name, "': no CUDA GPU found on this machine (the build has CUDA; ",
                                "check the NVIDIA driver with nvidia-smi), use --device cpu"));
        int index = 0;
        if (name.size() > 5) {
            try {
                size_t used = 0;
                index = std::stoi(name.substr(5), &used);
                if (used != name.size() - 5 || index < 0) throw std::invalid_argument("");
            } catch (const std::exception&) {
                throw Error(str_cat("device '", name, "': expected cuda:N"));
            }
        }
        if (index >= count)
            throw Error(str_cat("device '", name, "': this machine has ", count, " CUDA GPU", count == 1 ? "" : "s"));
        return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
    }
    throw Error(str_cat("device '", name, "': expected auto, cpu, cuda or cuda:N"));
}

at::ScalarType parse_compute_dtype(const std::string& name, at::Device device) {
    at::ScalarType t;
    if (name.empty() || name == "auto") t = device.is_cuda() ? at::kHalf : at::kFloat;
    else if (name == "f32" || name == "float32" || name == "fp32") t = at::kFloat;
    else if (name == "bf16" || name == "bfloat16") t = at::kBFloat16;
    else if (name == "f16" || name == "float16" || name == "fp16" || name == "half") t = at::kHalf;
    else throw Error(str_cat("dtype '", name, "': expected auto, f32, bf16 or f16"));
    if (t == at::kHalf && device.is_cpu())
        throw Error("dtype 'f16' on CPU: f16 matmul is unsupported on CPU in LibTorch 1.13; use bf16 or f32");
    return t;
}

std::string dtype_name(at::ScalarType dtype) {
    switch (dtype) {
        case at::kFloat: return "f32";
        case at::kBFloat16: return "bf16";
        case at::kHalf: return "f16";
        default: return c10::toString(dtype);
    }
}

int set_compute_threads(int threads) {
    if (threads <= 0) threads = int(std::thread::hardware_concurrency());
    if (threads <= 0) threads = 1;  // hardware_concurrency may not know
    if (at::get_num_threads() != threads) at::set_num_threads(threads);
    return threads;
}

// A forward pass allocates tens of MiB of short-lived activations per layer. glibc serves blocks
// above its (dynamic) mmap threshold with fresh mmap()s, whose pages fault in on first touch and
// go back to the kernel on free: measured at ~25% of the prefill time. Pin the threshold at its
// maximum (32 MiB) and keep freed memory in the heap, so later layers reuse warm pages. Once per
// process; DARTLENS_DEFAULT_MALLOC=1 keeps glibc's defaults.
static void tune_allocator() {
#if defined(__GLIBC__)
    static const bool done = [] {
        const char* env = std::getenv("DARTLENS_DEFAULT_MALLOC");
        if (env && *env && std::string(env) != "0") return false;
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
        return true;
    }();
    (void)done;
#endif
}

// Runs a few tokens through every decoder layer and lm_head, and a few rows through the first
// CLIP layer, on throwaway inputs: pays the one-time costs (thread pool, GEMM kernel selection)
// at load instead of in the first timed run. Results are discarded. Each layer touches all of its
// weights (seconds for a 7B on a CPU), so progress and cancel come per layer.
static void warm_up(const LlavaWeights& weights, const LlavaConfig& config, at::ScalarType dtype,
                    at::Device device) {
    c10::InferenceMode guard;
    try {
        const int64_t n = 4;
        const int L = config.text.num_hidden_layers;
        auto opts = at::TensorOptions().dtype(dtype).device(device);
        KVCache cache = KVCache::for_model(config, weights, n);
        at::Tensor x = at::zeros({n, config.text.hidden_size}, opts);
        at::Tensor pos = at::arange(n, at::TensorOptions().dtype(at::kLong).device(device));
        for (int l = 0; l < L; ++l) {
            progress_step(l, L + 1, "warm-up");
            run_layers(weights, config, x, pos, cache, l, l + 1, progress_cancel_flag());
        }
        last_logits(weights, config, x);
        if (!weights.vision.layers.empty())
            clip_layer(weights.vision.layers[0], config.vision, at::zeros({n, config.vision.hidden_size}, opts));
        progress_step(L + 1, L + 1, "warm-up");
    } catch (const Cancelled&) {
        throw;
    } catch (const std::exception&) {
        // Only a warm-up: a model that cannot run reports that from its first real forward.
    }
}

LlavaModel::LlavaModel(const std::string& dir, const LoadOptions& options) : dir_(dir) {
    tune_allocator();
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir)) throw Error(str_cat(dir, ": not a directory"));
    config_ = LlavaConfig::from_file((fs::path(dir) / "config.json").string());
    if (config_.text.hidden_act != "silu")
        throw Error(str_cat(dir, "/config.json: text_config.hidden_act '", config_.text.hidden_act,
                            "' unsupported (only silu)"));
    generation_ = GenerationConfig::from_file((fs::path(dir) / "generation_config.json").string());
    std::string preprocess = "crop";
    const fs::path pre = fs::path(dir) / "preprocessor_config.json";
    if (fs::exists(pre)) preprocess = PreprocessorConfig::from_file(pre.string()).mode;

    device_ = parse_device(options.device);
    dtype_ = parse_compute_dtype(options.dtype, device_);
    set_compute_threads(options.threads);

    // Progress (a ProgressScope of the caller, see progress.h): converting the weights is most of
    // the load, the warm-up the rest.
    WeightStore store = WeightStore::open_dir(dir);
    {
        ProgressScope part(0.0, 0.9);
        weights_ = load_llava_weights(store, config_, dtype_, device_);
    }
    {
        ProgressScope part(0.9, 1.0);
        warm_up(weights_, config_, dtype_, device_);
    }

    ModelInfo& m = info_;
    m.dir = dir;
    m.name = !config_.name_or_path.empty() ? config_.name_or_path
                                           : fs::path(dir).lexically_normal().filename().string();
    if (m.name.empty()) m.name = fs::path(dir).lexically_normal().parent_path().filename().string();
    m.weight_dtype = weights_.stored_dtype;
    m.compute_dtype = dtype_name(dtype_);
    m.device = device_.str();
    m.layout = weights_.layout;
    m.weight_bytes = weights_.stored_bytes;
    m.num_parameters = weights_.num_parameters;
    m.threads = at::get_num_threads();
    m.random_weights = config_.random_weights;
    m.image_size = config_.vision.image_size;
    m.patch_size = config_.vision.patch_size;
    m.grid = config_.vision.grid();
    m.num_image_tokens = config_.num_image_tokens();
    m.num_layers = config_.text.num_hidden_layers;
    m.hidden_size = config_.text.hidden_size;
    m.num_heads = config_.text.num_attention_heads;
    m.num_kv_heads = config_.text.num_key_value_heads;
    m.vocab_size = config_.text.vocab_size;
    m.max_positions = config_.text.max_position_embeddings;
    m.preprocess = preprocess;
}

at::Tensor LlavaModel::embed_tokens(const at::Tensor& ids) const {
    if (ids.dim() != 1) throw Error(str_cat("embed_tokens: ids must be [T], got ", ids.sizes()));
    const int64_t V = weights_.text.embed_tokens.size(0);
    if (ids.numel() > 0) {
        at::Tensor cpu = ids.to(at::kCPU).to(at::kLong);
        const int64_t lo = cpu.min().item<int64_t>(), hi = cpu.max().item<int64_t>();
        if (lo < 0 || hi >= V)
            throw Error(str_cat("embed_tokens: token id ", lo < 0 ? lo : hi, " outside the vocabulary 0..", V - 1));
    }
    return weights_.text.embed_tokens.index_select(0, ids.to(at::kLong).to(device_));
}

at::Tensor LlavaModel::embed_tokens(const std::vector<int>& ids) const {
    std::vector<int64_t> v(ids.begin(), ids.end());
    return embed_tokens(at::tensor(v, at::TensorOptions().dtype(at::kLong)));
}

at::Tensor LlavaModel::merge_image(const at::Tensor& embeds, int64_t pos, const at::Tensor& features) const {
    if (embeds.dim() != 2 || features.dim() != 2 || embeds.size(1) != features.size(1))
        throw Error(str_cat("merge_image: embeds ", embeds.sizes(), " and features ", features.sizes(),
                            " must be [T,d] and [N,d]"));
    if (pos < 0 || pos >= embeds.size(0))
        throw Error(str_cat("merge_image: image token position ", pos, " outside 0..", embeds.size(0) - 1));
    const int64_t T = embeds.size(0);
    return at::cat({embeds.narrow(0, 0, pos), features.to(embeds.scalar_type()).to(embeds.device()),
                    embeds.narrow(0, pos + 1, T - pos - 1)}, 0);
}

at::Tensor LlavaModel::encode_image(const at::Tensor& pixel_values, int height, int width) const {
    if (config_.is_next()) return encode_image_next(weights_, config_, pixel_values, height, width);
    return dl::encode_image(weights_, config_, pixel_values);
}

KVCache LlavaModel::new_cache(int64_t capacity) const {
    return KVCache::for_model(config_, weights_, capacity);
}

KVCache LlavaModel::new_cache(const std::vector<int64_t>& capacities) const {
    return KVCache::for_model(config_, weights_, capacities);
}

at::Tensor LlavaModel::forward_last_logits(at::Tensor x, const at::Tensor& positions, KVCache& cache,
                                           const std::atomic<bool>* cancel) const {
    run_layers(weights_, config_, x, positions, cache, 0, config_.text.num_hidden_layers, cancel);
    return last_logits(weights_, config_, x);
}

at::Tensor LlavaModel::step(int token, int64_t position, KVCache& cache, const std::atomic<bool>* cancel) const {
    at::Tensor x = embed_tokens(std::vector<int>{token});
    return forward_last_logits(x, positions({position}), cache, cancel);
}

at::Tensor LlavaModel::step(const at::Tensor& token, int64_t position, KVCache& cache,
                            const std::atomic<bool>* cancel) const {
    if (token.numel() != 1) throw Error(str_cat("step: expected one token, got ", token.sizes()));
    // The id comes from an argmax over the vocabulary rows, so it is in range by construction.
    at::Tensor x = weights_.text.embed_tokens.index_select(0, token.reshape({1}).to(at::kLong));
    at::Tensor pos = at::full({1}, position, at::TensorOptions().dtype(at::kLong).device(device_));
    run_layers(weights_, config_, x, pos, cache, 0, config_.text.num_hidden_layers, cancel, nullptr, position);
    return last_logits(weights_, config_, x);
}

at::Tensor LlavaModel::positions(const std::vector<int64_t>& pos) const {
    return at::tensor(pos, at::TensorOptions().dtype(at::kLong)).to(device_);
}

at::Tensor LlavaModel::positions_range(int64_t begin, int64_t end) const {
    return at::arange(begin, end, at::TensorOptions().dtype(at::kLong).device(device_));
}

}  // namespace dl
