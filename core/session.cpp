// dl::Session: the one object the CLI and the GUI drive. It owns the model, the current image and
// prompt, and the prefix cache, and wires the pruning methods into the decoder.
//
// Prefix cache. Vision features depend only on the image; the "trunk" is the unpruned prefill of
// the current prompt with every layer's input kept (x_l before layer l, l = 0..L) and the full
// KV cache. A pruned run at layer K then needs only: layer K-1's keys/values (trunk cache),
// x_K = output of layer K-1 (its final-norm is DART's Hn), and for FastV the queries of layer K-1
// for the rows the score needs, recomputed from x_{K-1}. It runs layers K..L-1 on x_K[keep] with
// the ORIGINAL positions, on a cache whose layers < K are a copy of the trunk's. Changing K just
// reads another x_K from the trunk. Timings of a cached run add the per-layer times measured when
// the trunk was built, so they report what a cold run costs; `run(..., use_prefix_cache=false)`
// recomputes everything from the pixels and times it (what `bench` uses).
#include "core/session.h"

#include <sys/stat.h>
#include <unistd.h>
#include <torch/cuda.h>
#include <c10/core/InferenceMode.h>

#include <chrono>

#include "core/model/attention.h"
#include "core/common.h"
#include "core/io/config.h"
#include "core/analysis/flops.h"
#include "core/model/generate.h"
#include "core/io/image.h"
#include "core/io/image_next.h"
#include "core/model/llama.h"
#include "core/model/llava.h"
#include "core/progress.h"
#include "core/model/prompt.h"
#include "core/pruning/pruner.h"
#include "core/io/tokenizer.h"

namespace dl {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Makes queued device work finish so that wall-clock timings are honest on CUDA.
void device_sync(const at::Device& device) {
    if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? -1 : device.index());
}

void check_cancel(const std::atomic<bool>* cancel) {
    if (cancel && cancel->load()) throw Cancelled();
}

std::string file_key(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return path;
    return str_cat(path, "|", st.st_size, "|", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
}

std::vector<float> to_float_vector(const at::Tensor& t) {
    at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// [Hkv, S, D] cache view -> [S, Hkv*D] in the cache dtype (the reference's key layout before
// repeat_kv); the pruning helpers accumulate in float32 whatever the storage dtype.
at::Tensor cache_rows(const at::Tensor& kv) {
    return kv.permute({1, 0, 2}).reshape({kv.size(1), kv.size(0) * kv.size(2)});
}

}  // namespace

struct Session::Impl {
    std::unique_ptr<LlavaModel> model;
    std::unique_ptr<Tokenizer> tokenizer;
    PreprocessorConfig preproc;
    ModelInfo info;
    double load_ms = 0;
    int threads = 1;

    // Current inputs.
    bool prepared = false;
    std::string image_key, preprocess_mode, prompt_key;
    RunRequest request;
    PromptInfo prompt;
    ImageGeometry geometry;
    at::Tensor pixel_values;     // [1,3,H,W] float32 CPU
    double preprocess_ms = 0;
    at::Tensor image_features;   // [N,d] (empty until computed)
    double vision_ms = 0;
    at::Tensor embeds;           // [S,d] merged prompt embeddings
    double embed_ms = 0;

    // Trunk (unpruned prefill with checkpoints).
    bool have_trunk = false;
    std::vector<at::Tensor> layer_inputs;  // L+1 entries: x_l before layer l; [L] = last output
    std::vector<double> layer_ms;          // measured time of each layer on S tokens
    KVCache trunk_cache;
    at::Tensor trunk_logits;               // [V] float32 at the last prompt position
    double logits_ms = 0;

    void set_threads() const {
        // OpenMP thread counts are per calling thread: set them on whichever thread runs the work.
        set_compute_threads(threads);
    }

    void require_model() const {
        if (!model) throw Error("session: no model loaded");
    }
    void require_prepared() const {
        require_model();
        if (!prepared) throw Error("session: no image/question prepared");
    }

    int num_layers() const { return model->config().text.num_hidden_layers; }

    // A cache whose layers < k hold the whole prompt plus the new tokens; layers >= k are
    // allocated by run_pruned_tail once the method has said how many tokens it keeps.
    KVCache pruned_cache(int k, int max_new_tokens) const {
        std::vector<int64_t> caps(size_t(num_layers()), 0);
        for (int l = 0; l < k; ++l) caps[size_t(l)] = seq_len() + max_new_tokens + 1;
        return model->new_cache(caps);
    }
    int64_t seq_len() const { return prompt.sequence_length; }

    std::vector<int> eos_ids() const {
        std::vector<int> ids = model->generation_config().eos_token_ids;
        if (std::find(ids.begin(), ids.end(), tokenizer->eos_id()) == ids.end()) ids.push_back(tokenizer->eos_id());
        return ids;
    }

    // Vision features of the current image; progress per CLIP layer in [lo, hi] of the caller's bar.
    void ensure_vision(const ProgressFn& progress, const std::atomic<bool>* cancel, double lo, double hi) {
        if (image_features.defined()) return;
        check_cancel(cancel);
        ProgressScope scope(progress, cancel, lo, hi);
        auto t0 = Clock::now();
        at::Tensor f = model->encode_image(pixel_values.to(model->device()), geometry.original_height,
                                           geometry.original_width);
        device_sync(model->device());
        vision_ms = ms_since(t0);
        image_features = f;
    }

    void ensure_embeds() {
        if (embeds.defined()) return;
        auto t0 = Clock::now();
        const int image_id = model->config().image_token_index;
        std::vector<int> ids = prompt.prompt_ids;
        const auto image_it = std::find(ids.begin(), ids.end(), image_id);
        if (image_it == ids.end())
            throw Error(str_cat("session: image token (id ", image_id, ", config image_token_index) not found in the ",
                                ids.size(), " prompt ids"));
        const int64_t image_pos = image_it - ids.begin();
        ids[size_t(image_pos)] = 0;  // its row is replaced by the image features below
        at::Tensor e = model->embed_tokens(ids);
        embeds = model->merge_image(e, image_pos, image_features);
        device_sync(model->device());
        embed_ms = ms_since(t0);
    }

    // Builds the trunk (every layer on the full prompt: the longest step before decoding), with
    // progress per layer in [0, 0.9] of the caller's bar. A cancel leaves no trunk behind.
    void ensure_trunk(int max_new_tokens, const ProgressFn& progress, const std::atomic<bool>* cancel) {
        if (have_trunk) {
            trunk_cache.reserve(seq_len() + max_new_tokens + 1);
            return;
        }
        ensure_vision(progress, cancel, 0.0, 0.1);
        ensure_embeds();
        check_cancel(cancel);
        const int L = num_layers();
        KVCache cache = model->new_cache(seq_len() + max_new_tokens + 1);
        at::Tensor x = embeds;
        const at::Tensor pos = model->positions_range(0, seq_len());
        std::vector<at::Tensor> inputs;
        std::vector<double> times;
        {
            // The first full-length layer of a process pays for faulting in its activation
            // memory; cached runs report these per-layer times as what a cold run costs, so the
            // first layer runs once untimed on a scratch cache to keep that cost out of them.
            KVCache scratch = model->new_cache(seq_len());
            at::Tensor y = embeds;
            run_layers(model->weights(), model->config(), y, pos, scratch, 0, 1, cancel);
            device_sync(model->device());
        }
        for (int l = 0; l < L; ++l) {
            if (progress) progress(0.1 + 0.8 * double(l) / L, "prefill");
            auto t0 = Clock::now();
            run_layers(model->weights(), model->config(), x, pos, cache, l, l + 1, cancel, &inputs);
            device_sync(model->device());
            times.push_back(ms_since(t0));
        }
        if (progress) progress(0.9, "prefill");
        check_cancel(cancel);
        inputs.push_back(x);
        auto t0 = Clock::now();
        at::Tensor logits = last_logits(model->weights(), model->config(), x);
        device_sync(model->device());
        logits_ms = ms_since(t0);
        layer_inputs = std::move(inputs);
        layer_ms = std::move(times);
        trunk_cache = std::move(cache);
        trunk_logits = logits;
        have_trunk = true;
    }

    // What layer K-1 hands the pruning method. x_prev: input of layer K-1 [S,d]; x_k: its output.
    PruneInputs prune_inputs(const Pruner& pruner, const PruneConfig& cfg, const KVCache& cache,
                             const at::Tensor& x_prev, const at::Tensor& x_k) const {
        const int k = cfg.layer;
        const LlavaConfig& c = model->config();
        PruneInputs in;
        in.image_start = prompt.image_span_start;
        in.num_image = prompt.image_span_length;
        in.seq_len = int(seq_len());
        in.keys = cache_rows(cache.keys(k - 1));
        in.kv_repeat = c.text.num_attention_heads / c.text.num_key_value_heads;
        // The rest only when the method reads it (Pruner::needs).
        const PruneNeeds needs = pruner.needs(cfg);
        if (needs.values) in.values = cache_rows(cache.values(k - 1));
        if (needs.hidden_normed) in.hidden_normed = final_norm(model->weights(), c, x_k);
        const at::Tensor keys = cache.keys(k - 1);
        if (needs.attn_last) {
            const int64_t last = seq_len() - 1;
            at::Tensor q = layer_query(model->weights(), c, k - 1, x_prev.slice(0, last, last + 1),
                                       model->positions({last}));
            in.attn_last = attention_probs_rows(q, keys, {last}).mean(0).reshape({-1});  // [S]
        }
        if (needs.attn_mean) {
            at::Tensor q = layer_query(model->weights(), c, k - 1, x_prev, model->positions_range(0, seq_len()));
            in.attn_mean = attention_column_mean(q, keys);
        }
        return in;
    }

    Selection select(const PruneConfig& cfg, const KVCache& cache, const at::Tensor& x_prev,
                     const at::Tensor& x_k) const {
        std::unique_ptr<Pruner> pruner = make_pruner(cfg.method);
        auto t0 = Clock::now();
        PruneInputs in = prune_inputs(*pruner, cfg, cache, x_prev, x_k);
        Selection sel = pruner->select(in, cfg);
        device_sync(model->device());
        sel.result.selection_ms = ms_since(t0);  // includes gathering the inputs
        sel.result.layer = cfg.layer;
        return sel;
    }

    PruningResult unpruned_result(const PruneConfig& cfg) const {
        PruningResult r;
        r.method = "none";
        r.layer = cfg.layer;
        r.num_image_tokens = prompt.image_span_length;
        r.budget = r.num_image_tokens;
        r.kept_count = r.num_image_tokens;
        for (int i = 0; i < r.num_image_tokens; ++i) r.kept_image_indices.push_back(i);
        return r;
    }

    // Decodes and fills in the run's figures. A cancel during decode is not an error: the run
    // keeps the tokens generated so far and says cancelled (api.h).
    void finish_run(MethodRun& run, const PruneConfig& cfg, KVCache& cache, const at::Tensor& first_logits,
                    int max_new_tokens, const ProgressFn& progress, const std::atomic<bool>* cancel) {
        run.prompt_logits = to_float_vector(first_logits);
        auto t0 = Clock::now();
        std::vector<int> emitted;
        auto on_token = [&](int step, int token) {
            emitted.push_back(token);
            if (progress) progress(0.9 + 0.1 * double(step + 1) / std::max(1, max_new_tokens), "decode");
        };
        GreedyResult g;
        try {
            g = decode_greedy(*model, cache, first_logits, seq_len(), max_new_tokens, eos_ids(), cancel, false,
                              on_token);
        } catch (const Cancelled&) {
            g.tokens = emitted;
            run.cancelled = true;
        }
        device_sync(model->device());
        run.timing_ms.decode = ms_since(t0);
        run.output_ids = g.tokens;
        run.text = tokenizer->decode(g.tokens);
        run.timing_ms.load = load_ms;
        run.timing_ms.ttft = preprocess_ms + run.timing_ms.vision + run.timing_ms.prefill;
        run.timing_ms.total = run.timing_ms.ttft + run.timing_ms.decode;
        run.kv_cache_bytes = cache.bytes();
        run.kv_cache_allocated_bytes = cache.allocated_bytes();
        const LlavaConfig& c = model->config();
        const bool pruned = cfg.method != "none";
        const int k = pruned ? cfg.layer : num_layers();
        run.prefill_tokens_after = pruned ? int(seq_len() - run.pruning.num_image_tokens + run.pruning.kept_count)
                                          : int(seq_len());
        run.prefill_flops = prefill_flops(c, seq_len(), k, run.prefill_tokens_after);
        run.decode_flops_per_token = decode_flops_per_token(c, k, seq_len(), run.prefill_tokens_after);
    }

    // Runs layers K.. on the kept rows of x_k (original positions) over `cache` (layers < K
    // filled), returns the last-row logits and adds the time to run.timing_ms.prefill.
    at::Tensor run_pruned_tail(MethodRun& run, const Selection& sel, const at::Tensor& x_k, KVCache& cache,
                               int k, int max_new_tokens, const std::atomic<bool>* cancel) {
        auto t0 = Clock::now();
        for (int l = k; l < num_layers(); ++l)
            cache.reserve_layer(l, int64_t(sel.keep.size()) + max_new_tokens + 1);
        at::Tensor keep = model->positions(sel.keep);
        at::Tensor x = x_k.index_select(0, keep);
        run_layers(model->weights(), model->config(), x, keep, cache, k, num_layers(), cancel);
        at::Tensor logits = last_logits(model->weights(), model->config(), x);
        device_sync(model->device());
        run.timing_ms.prefill += ms_since(t0);
        return logits;
    }

    MethodRun run_cached(const PruneConfig& cfg, int max_new_tokens, const ProgressFn& progress,
                         const std::atomic<bool>* cancel) {
        ensure_trunk(max_new_tokens, progress, cancel);
        MethodRun run;
        run.config = cfg;
        run.from_prefix_cache = true;
        run.timing_ms.vision = vision_ms;
        if (cfg.method == "none") {
            run.pruning = unpruned_result(cfg);
            run.timing_ms.prefill = embed_ms + logits_ms;
            for (double t : layer_ms) run.timing_ms.prefill += t;
            // Decode straight into the trunk cache, then give the trunk its prompt-only state back.
            struct Restore {
                KVCache& c;
                int64_t s;
                ~Restore() {
                    for (int l = 0; l < c.num_layers(); ++l) c.truncate(l, s);
                }
            } restore{trunk_cache, seq_len()};
            finish_run(run, cfg, trunk_cache, trunk_logits, max_new_tokens, progress, cancel);
            return run;
        }
        const int k = cfg.layer;
        Selection sel = select(cfg, trunk_cache, layer_inputs[k - 1], layer_inputs[k]);
        run.pruning = sel.result;
        run.timing_ms.selection = sel.result.selection_ms;
        run.timing_ms.prefill = embed_ms + sel.result.selection_ms;
        for (int l = 0; l < k; ++l) run.timing_ms.prefill += layer_ms[l];
        KVCache cache = pruned_cache(k, max_new_tokens);
        cache.copy_prefix_from(trunk_cache, 0, k);
        if (progress) progress(0.5, "prefill");
        at::Tensor logits = run_pruned_tail(run, sel, layer_inputs[k], cache, k, max_new_tokens, cancel);
        finish_run(run, cfg, cache, logits, max_new_tokens, progress, cancel);
        return run;
    }

    MethodRun run_cold(const PruneConfig& cfg, int max_new_tokens, const ProgressFn& progress,
                       const std::atomic<bool>* cancel) {
        MethodRun run;
        run.config = cfg;
        image_features = at::Tensor();
        embeds = at::Tensor();
        ensure_vision(progress, cancel, 0.0, 0.2);
        run.timing_ms.vision = vision_ms;
        ensure_embeds();
        const bool pruned = cfg.method != "none";
        const int L = num_layers();
        const int k = pruned ? cfg.layer : L;
        KVCache cache = pruned_cache(k, max_new_tokens);
        auto t0 = Clock::now();
        at::Tensor x = embeds;
        const at::Tensor pos = model->positions_range(0, seq_len());
        if (progress) progress(0.2, "prefill");
        at::Tensor x_prev;
        if (pruned) {
            if (k > 1) run_layers(model->weights(), model->config(), x, pos, cache, 0, k - 1, cancel);
            x_prev = x;
            run_layers(model->weights(), model->config(), x, pos, cache, k - 1, k, cancel);
        } else {
            run_layers(model->weights(), model->config(), x, pos, cache, 0, L, cancel);
        }
        device_sync(model->device());
        run.timing_ms.prefill = embed_ms + ms_since(t0);
        at::Tensor logits;
        if (pruned) {
            Selection sel = select(cfg, cache, x_prev, x);
            run.pruning = sel.result;
            run.timing_ms.selection = sel.result.selection_ms;
            run.timing_ms.prefill += sel.result.selection_ms;
            logits = run_pruned_tail(run, sel, x, cache, k, max_new_tokens, cancel);
        } else {
            run.pruning = unpruned_result(cfg);
            auto t1 = Clock::now();
            logits = last_logits(model->weights(), model->config(), x);
            device_sync(model->device());
            run.timing_ms.prefill += ms_since(t1);
        }
        finish_run(run, cfg, cache, logits, max_new_tokens, progress, cancel);
        return run;
    }

    void drop_trunk() {
        have_trunk = false;
        layer_inputs.clear();
        layer_ms.clear();
        trunk_cache = KVCache();
        trunk_logits = at::Tensor();
    }
};

Session::Session() : impl_(std::make_unique<Impl>()) {}
Session::~Session() = default;

ModelInfo Session::load_model(const std::string& dir, const LoadOptions& options, const ProgressFn& progress,
                              const std::atomic<bool>* cancel) {
    c10::InferenceMode guard;
    auto t0 = Clock::now();
    if (progress) progress(0.0, "config");
    check_cancel(cancel);
    // Device and dtype first: "--device cuda" on a machine without a GPU is one clear line,
    // whatever the directory holds.
    parse_compute_dtype(options.dtype, parse_device(options.device));
    const int threads = set_compute_threads(options.threads);
    // Build everything first, then swap in: a failed or cancelled load keeps the old model.
    if (progress) progress(0.1, "tokenizer");
    auto tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(dir));
    check_cancel(cancel);
    std::unique_ptr<LlavaModel> model;
    {
        // per tensor converted and per layer warmed up (progress.h)
        ProgressScope scope(progress, cancel, 0.2, 0.95);
        progress_step(0, 1, "weights");
        model = std::make_unique<LlavaModel>(dir, options);
    }
    check_cancel(cancel);
    // preprocessor_config.json is part of every llava-hf checkpoint; original-LLaVA directories
    // lack it, and then CLIP's defaults at the tower's own resolution apply.
    PreprocessorConfig pre;
    const std::string pre_path = dir + "/preprocessor_config.json";
    if (::access(pre_path.c_str(), F_OK) == 0) {
        pre = PreprocessorConfig::from_file(pre_path);
    } else {
        pre.shortest_edge = pre.crop_height = pre.crop_width = model->config().vision.image_size;
    }
    if (progress) progress(1.0, "loaded");

    Impl& s = *impl_;
    s.model = std::move(model);
    s.tokenizer = std::move(tokenizer);
    s.preproc = pre;
    s.threads = threads;
    s.load_ms = ms_since(t0);
    s.info = s.model->info();
    s.info.threads = threads;
    s.info.preprocess = s.model->config().is_next() ? "anyres" : pre.mode;  // NeXT: the span varies per picture
    s.prepared = false;
    s.image_key.clear();
    s.prompt_key.clear();
    s.image_features = at::Tensor();
    s.embeds = at::Tensor();
    s.drop_trunk();
    return s.info;
}

bool Session::has_model() const { return impl_->model != nullptr; }

const ModelInfo& Session::model_info() const {
    impl_->require_model();
    return impl_->info;
}

// The expanded prompt's length S (ids with the placeholder replaced by n_image tokens); throws
// when it does not fit the model's context.
static int64_t check_context(const LlavaConfig& c, const PromptTokens& pt, int n_image) {
    const int64_t seq = int64_t(pt.ids.size()) - 1 + n_image;
    if (seq + 1 > c.text.max_position_embeddings)
        throw Error(str_cat("prompt: ", seq, " tokens (", n_image, " of them image tokens) exceed the model's context of ",
                            c.text.max_position_embeddings, " (text_config.max_position_embeddings)"));
    return seq;
}

PromptInfo Session::prepare(const RunRequest& request, const ProgressFn& progress, const std::atomic<bool>* cancel) {
    c10::InferenceMode guard;
    Impl& s = *impl_;
    s.require_model();
    s.set_threads();
    const LlavaConfig& c = s.model->config();
    const bool automatic = request.preprocess.empty() || request.preprocess == "auto";
    if (c.is_next() && !automatic && request.preprocess != "anyres")
        throw Error(str_cat("preprocess: mode '", request.preprocess, "' with a LLaVA-NeXT model (valid: auto, anyres)"));
    const std::string mode = c.is_next() ? "anyres" : automatic ? s.preproc.mode : request.preprocess;
    if (!c.is_next() && mode != "crop" && mode != "pad")
        throw Error(str_cat("preprocess: unknown mode '", request.preprocess, "' (valid: auto, crop, pad",
                            mode == "anyres" ? "; anyres is LLaVA-NeXT's" : "", ")"));

    // Prompt first: a bad question fails before any image work.
    const std::string pkey = str_cat(request.template_name, "\x1f", request.question);
    PromptTokens pt = build_prompt(*s.tokenizer, request.question, request.template_name, c.image_token_index,
                                   s.tokenizer->bos_id());
    // LLaVA-1.5's span length is fixed, so a too-long prompt fails here, before any image work;
    // LLaVA-NeXT's follows from the picture and is checked once it is preprocessed.
    int64_t seq = c.is_next() ? 0 : check_context(c, pt, c.num_image_tokens());

    const std::string ikey = file_key(request.image_path) + "\x1f" + mode;
    if (ikey != s.image_key || !s.pixel_values.defined()) {
        check_cancel(cancel);
        if (progress) progress(0.0, "image");
        auto t0 = Clock::now();
        cv::Mat rgb = load_image_rgb8(request.image_path);
        // LLaVA-NeXT: anyres tiles; the span's length follows from the picture's size
        PreprocessedImage pre = c.is_next() ? preprocess_image_next(rgb, s.preproc, c)
                                            : preprocess_image(rgb, s.preproc, mode, c.vision.patch_size);
        s.preprocess_ms = ms_since(t0);
        s.pixel_values = pre.pixel_values;
        s.geometry = pre.geometry;
        s.image_key = ikey;
        s.image_features = at::Tensor();
        s.embeds = at::Tensor();
        s.drop_trunk();
    }
    if (pkey != s.prompt_key) {
        s.embeds = at::Tensor();
        s.drop_trunk();
        s.prompt_key = pkey;
    }
    const int n_image = c.is_next() ? s.geometry.num_tokens() : c.num_image_tokens();
    if (c.is_next()) seq = check_context(c, pt, n_image);
    s.request = request;
    s.preprocess_mode = mode;
    s.prompt.prompt_ids = pt.ids;
    s.prompt.image_span_start = pt.image_token_pos;
    s.prompt.image_span_length = n_image;
    s.prompt.sequence_length = int(seq);
    s.prompt.prompt_text = pt.text;
    s.prepared = true;
    s.ensure_vision(progress, cancel, 0.05, 0.95);
    s.ensure_embeds();
    if (progress) progress(1.0, "prepared");
    return s.prompt;
}

ImageGeometry Session::geometry() const { return impl_->geometry; }

std::vector<float> Session::pixel_values(std::vector<int64_t>* shape) const {
    const at::Tensor& p = impl_->pixel_values;
    if (shape) shape->clear();
    if (!p.defined()) return {};
    if (shape) *shape = p.sizes().vec();
    return to_float_vector(p);
}

PruningResult Session::preview(const PruneConfig& config, const ProgressFn& progress,
                               const std::atomic<bool>* cancel) {
    c10::InferenceMode guard;
    Impl& s = *impl_;
    s.require_prepared();
    s.set_threads();
    validate_prune_config(config, s.num_layers());
    s.ensure_trunk(s.request.max_new_tokens, progress, cancel);
    if (config.method == "none") return s.unpruned_result(config);
    const int k = config.layer;
    return s.select(config, s.trunk_cache, s.layer_inputs[k - 1], s.layer_inputs[k]).result;
}

MethodRun Session::run(const PruneConfig& config, int max_new_tokens, const ProgressFn& progress,
                       const std::atomic<bool>* cancel, bool use_prefix_cache) {
    c10::InferenceMode guard;
    Impl& s = *impl_;
    s.require_prepared();
    s.set_threads();
    validate_prune_config(config, s.num_layers());
    if (max_new_tokens < 0) throw Error("n_predict: must be >= 0");
    if (s.seq_len() + max_new_tokens > s.model->config().text.max_position_embeddings)
        max_new_tokens = int(s.model->config().text.max_position_embeddings - s.seq_len());
    auto t0 = Clock::now();
    MethodRun run = use_prefix_cache ? s.run_cached(config, max_new_tokens, progress, cancel)
                                     : s.run_cold(config, max_new_tokens, progress, cancel);
    run.wall_ms = ms_since(t0);
    if (progress) progress(1.0, run.cancelled ? "cancelled" : "done");
    return run;
}

void Session::clear_cache() {
    Impl& s = *impl_;
    s.image_features = at::Tensor();
    s.embeds = at::Tensor();
    s.drop_trunk();
}

}  // namespace dl
