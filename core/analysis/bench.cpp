// The bench sweep (see bench.h): configurations, repetitions, statistics, output tables.
#include "core/analysis/bench.h"
#include "core/model/llava.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/api.h"
#include "core/common.h"
#include "core/io/config.h"
#include "core/analysis/device_memory.h"
#include "core/analysis/flops.h"
#include "core/model/make_model.h"

namespace fs = std::filesystem;

namespace dl {

namespace {

using Clock = std::chrono::steady_clock;

struct Stat {
    double median = 0, min = 0, max = 0;
};

Stat stat_of(std::vector<double> v) {
    Stat s;
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    s.min = v.front();
    s.max = v.back();
    return s;
}

// A "Key:   N kB" line of /proc/self/status, in bytes; 0 where /proc is missing (not Linux).
int64_t proc_status_bytes(const char* key) {
    std::ifstream f("/proc/self/status");
    const std::string prefix = std::string(key) + ":";
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(prefix, 0) == 0) return int64_t(std::stoll(line.substr(prefix.size()))) * 1024;
    return 0;
}

// Peak resident set size since the last reset (VmHWM), and the current one (VmRSS).
int64_t peak_rss_bytes() { return proc_status_bytes("VmHWM"); }
int64_t rss_bytes() { return proc_status_bytes("VmRSS"); }

// Minor page faults of this process so far: each is a fresh page the kernel had to map (and zero),
// which costs microseconds on a virtual machine; allocations that are reused cause none.
int64_t minor_faults() {
    struct rusage u {};
    return ::getrusage(RUSAGE_SELF, &u) == 0 ? int64_t(u.ru_minflt) : 0;
}

void reset_peak_rss() {
    std::ofstream f("/proc/self/clear_refs");
    f << "5";  // resets VmHWM to the current RSS (Linux >= 4.0)
}

struct Row {
    PruneConfig config;
    int kept = 0, budget = 0, n_image = 0, seq = 0, seq_after = 0, out_tokens = 0;
    Stat vision, prefill, selection, decode_per_token, ttft, total, rerun, faults;
    double prefill_flops = 0, decode_flops = 0;
    int64_t kv_bytes = 0, kv_alloc = 0, peak_rss = 0, device_peak = 0;
    double speedup = 0, flop_ratio = 0, efficiency = 0;
    double decode_bytes = 0, decode_bound_ms = 0, decode_fraction = 0, rss_over_weights = 0;
    std::string text;
};

std::string default_image() {
#ifdef DARTLENS_SOURCE_DIR
    return std::string(DARTLENS_SOURCE_DIR) + "/resources/sample.jpg";
#else
    return "resources/sample.jpg";
#endif
}

// The best of max(3, reps) timed calls of `once` (after one untimed call) as `work` / second / 1e9.
template <class F>
double best_rate(F&& once, double work, int reps) {
    once();
    std::vector<double> rates;
    for (int r = 0; r < std::max(3, reps); ++r) {
        auto t0 = Clock::now();
        once();
        rates.push_back(work / std::chrono::duration<double>(Clock::now() - t0).count() / 1e9);
    }
    return stat_of(rates).max;
}

// GFLOP/s that at::matmul reaches on the shapes of the model's prefill linears (same dtype,
// device, threads): the practical peak the whole prefill is compared against.
double gemm_reference_gflops(const LlavaConfig& c, int64_t seq, at::ScalarType dtype, at::Device device, int reps) {
    const TextConfig& t = c.text;
    const int64_t d = t.hidden_size, I = t.intermediate_size, HD = int64_t(t.num_attention_heads) * t.head_dim();
    const int64_t KV = int64_t(t.num_key_value_heads) * t.head_dim();
    auto opts = at::TensorOptions().dtype(dtype).device(device);
    at::Tensor x = at::randn({seq, d}, opts), h = at::randn({seq, I}, opts);
    at::Tensor wq = at::randn({HD, d}, opts), wkv = at::randn({KV, d}, opts), wo = at::randn({d, HD}, opts);
    at::Tensor wg = at::randn({I, d}, opts), wd = at::randn({d, I}, opts);
    at::Tensor xo = at::randn({seq, HD}, opts);
    const double flops = 2.0 * seq * (d * HD + 2 * d * KV + HD * d + 3 * d * I);
    auto once = [&] {
        at::linear(x, wq);
        at::linear(x, wkv);
        at::linear(x, wkv);
        at::linear(xo, wo);
        at::linear(x, wg);
        at::linear(x, wg);
        at::linear(h, wd);
        if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? -1 : device.index());
    };
    return best_rate(once, flops, reps);
}

// Bytes per second that one large copy on the device reaches with the session's threads, counted
// as STREAM's Copy counts them (bytes read + bytes written): the memory bandwidth a decode step,
// which streams every weight once, is measured against. 256 MiB each way, far past any cache.
double copy_rate_gbs(at::Device device, int reps) {
    const int64_t n = int64_t(64) << 20;
    auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
    at::Tensor src = at::ones({n}, opts), dst = at::zeros({n}, opts);
    auto once = [&] {
        dst.copy_(src);
        if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? -1 : device.index());
    };
    return best_rate(once, 2.0 * double(n) * 4, reps);
}

std::string fmt(double v, int prec = 2) {
    std::ostringstream os;
    os.setf(std::ios::fixed);
    os.precision(prec);
    os << v;
    return os.str();
}

}  // namespace

std::vector<int> parse_int_list(const std::string& text, const std::string& flag) {
    std::vector<int> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        try {
            const size_t dash = item.find('-', 1);
            if (dash == std::string::npos) {
                size_t used = 0;
                out.push_back(std::stoi(item, &used));
                if (used != item.size()) throw std::invalid_argument(item);
                continue;
            }
            const size_t plus = item.find('+', dash);
            const int first = std::stoi(item.substr(0, dash));
            const int last = std::stoi(item.substr(dash + 1, plus == std::string::npos ? std::string::npos : plus - dash - 1));
            const int step = plus == std::string::npos ? 1 : std::stoi(item.substr(plus + 1));
            if (step <= 0 || last < first) throw std::invalid_argument(item);
            for (int v = first; v <= last; v += step) out.push_back(v);
        } catch (const std::exception&) {
            throw Error(str_cat(flag, ": cannot parse '", item, "' (use a,b,c or first-last+step)"));
        }
    }
    return out;
}

std::vector<double> parse_double_list(const std::string& text, const std::string& flag) {
    std::vector<double> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        try {
            size_t used = 0;
            out.push_back(std::stod(item, &used));
            if (used != item.size()) throw std::invalid_argument(item);
        } catch (const std::exception&) {
            throw Error(str_cat(flag, ": cannot parse '", item, "' as a number"));
        }
    }
    return out;
}

int run_bench(const BenchArgs& a) {
    c10::InferenceMode guard;
    parse_compute_dtype(a.dtype, parse_device(a.device));  // a bad --device/--dtype fails before any work
    std::string model_dir = a.model_dir;
    std::string temp_dir;
    if (model_dir.empty()) {
        if (a.preset.empty()) throw Error("bench: give -m MODEL_DIR or --preset NAME");
        temp_dir = (fs::temp_directory_path() / str_cat("dartlens-bench-", a.preset, "-", ::getpid())).string();
        std::fprintf(stderr, "bench: generating preset %s into %s\n", a.preset.c_str(), temp_dir.c_str());
        make_model(a.preset, temp_dir, a.seed);
        model_dir = temp_dir;
    }
    struct Cleanup {
        std::string dir;
        ~Cleanup() {
            if (!dir.empty()) {
                std::error_code ec;
                fs::remove_all(dir, ec);
            }
        }
    } cleanup{temp_dir};

    // The runtime's own resident memory before any model (libraries, the thread pool and the BLAS
    // buffers, which one small matrix product starts): the fixed overhead that peak RSS is stated
    // against, with the weights in the compute dtype.
    set_compute_threads(a.threads);  // what the session will use (0: every hardware thread)
    (void)at::mm(at::ones({256, 256}), at::ones({256, 256})).sum().item<float>();
    const int64_t runtime_rss = rss_bytes();

    Session session;
    LoadOptions lo;
    lo.device = a.device;
    lo.dtype = a.dtype;
    lo.threads = a.threads;
    const ModelInfo info = session.load_model(model_dir, lo);
    const LlavaConfig config = LlavaConfig::from_file(model_dir + "/config.json");
    RunRequest req;
    req.image_path = a.image.empty() ? default_image() : a.image;
    req.question = a.prompt;
    req.template_name = a.template_name;
    req.max_new_tokens = a.n_predict;
    const PromptInfo prompt = session.prepare(req);

    // Configurations: none once; each pruning method x budget x layer (x pivots for dart).
    std::vector<PruneConfig> configs;
    std::vector<int> keeps = a.keep.empty() ? std::vector<int>{} : parse_int_list(a.keep, "--keep");
    std::vector<double> ratios = a.ratio.empty() ? std::vector<double>{} : parse_double_list(a.ratio, "--ratio");
    if (keeps.empty() && ratios.empty()) ratios = {0.889};
    const std::vector<int> layers = parse_int_list(a.layers, "--layer");
    const std::vector<int> pivots = parse_int_list(a.pivots_image, "--pivots-image");
    std::stringstream ms(a.methods);
    std::string method;
    bool have_none = false;
    while (std::getline(ms, method, ',')) {
        if (method.empty()) continue;
        if (method == "none") {
            PruneConfig c;
            configs.insert(configs.begin(), c);
            have_none = true;
            continue;
        }
        for (int k : layers) {
            auto add = [&](int keep, double ratio) {
                for (size_t pi = 0; pi < (method == "dart" ? pivots.size() : 1); ++pi) {
                    PruneConfig c;
                    c.method = method;
                    c.layer = k;
                    c.keep = keep;
                    c.ratio = ratio;
                    c.seed = a.seed;
                    if (method == "dart") c.pivots_image = pivots[pi];
                    configs.push_back(c);
                }
            };
            for (int b : keeps) add(b, -1);
            for (double r : ratios) add(-1, r);
        }
    }
    if (!have_none) {
        PruneConfig c;  // the speedup reference is always measured in the same run
        configs.insert(configs.begin(), c);
    }

    std::vector<Row> rows;
    const int total_runs = int(configs.size()) * (a.warmup + a.reps);
    int done = 0;
    for (const PruneConfig& cfg : configs) {
        Row row;
        row.config = cfg;
        std::vector<double> vis, pre, sel, dec, ttft, tot, rerun, faults;
        reset_peak_rss();
        device_memory_reset_peak(info.device);
        for (int r = 0; r < a.warmup + a.reps; ++r) {
            std::fprintf(stderr, "\rbench: %-40s run %d/%d (%d/%d)   ", cfg.label().c_str(), r + 1,
                         a.warmup + a.reps, ++done, total_runs);
            const int64_t faults0 = minor_faults();
            MethodRun run = session.run(cfg, a.n_predict, {}, nullptr, /*use_prefix_cache=*/false);
            if (r < a.warmup) continue;
            faults.push_back(double(minor_faults() - faults0));
            vis.push_back(run.timing_ms.vision);
            pre.push_back(run.timing_ms.prefill);
            sel.push_back(run.timing_ms.selection);
            dec.push_back(run.output_ids.empty() ? 0.0 : run.timing_ms.decode / double(run.output_ids.size()));
            ttft.push_back(run.timing_ms.ttft);
            tot.push_back(run.timing_ms.total);
            row.kept = run.pruning.kept_count;
            row.budget = run.pruning.budget;
            row.n_image = run.pruning.num_image_tokens;
            row.seq_after = run.prefill_tokens_after;
            row.prefill_flops = run.prefill_flops;
            row.decode_flops = run.decode_flops_per_token;
            row.kv_bytes = run.kv_cache_bytes;
            row.kv_alloc = run.kv_cache_allocated_bytes;
            row.out_tokens = int(run.output_ids.size());
            row.text = run.text;
        }
        row.peak_rss = peak_rss_bytes();
        row.device_peak = device_memory_peak_bytes(info.device);
        if (a.prefix_cache && cfg.method != "none") {
            session.run(cfg, 0);  // builds the trunk once if needed
            for (int r = 0; r < std::max(3, a.reps); ++r) rerun.push_back(session.run(cfg, 0).wall_ms);
        }
        row.seq = prompt.sequence_length;
        row.vision = stat_of(vis);
        row.prefill = stat_of(pre);
        row.selection = stat_of(sel);
        row.decode_per_token = stat_of(dec);
        row.ttft = stat_of(ttft);
        row.total = stat_of(tot);
        row.rerun = stat_of(rerun);
        row.faults = stat_of(faults);
        rows.push_back(row);
    }
    std::fprintf(stderr, "\n");

    const Row& base = rows.front();
    for (Row& r : rows) {
        r.speedup = r.prefill.median > 0 ? base.prefill.median / r.prefill.median : 0;
        r.flop_ratio = base.prefill_flops > 0 ? r.prefill_flops / base.prefill_flops : 0;
        r.efficiency = r.flop_ratio > 0 ? r.speedup * r.flop_ratio : 0;  // speedup / (1 / ratio)
    }
    const at::ScalarType dtype = info.compute_dtype == "bf16" ? at::kBFloat16
                                 : info.compute_dtype == "f16" ? at::kHalf : at::kFloat;
    const at::Device device(info.device);
    double gemm_gflops = 0, copy_gbs = 0;
    if (a.gemm_peak) {
        std::fprintf(stderr, "bench: measuring GEMM reference rate on the prefill shapes and the copy rate\n");
        gemm_gflops = gemm_reference_gflops(config, prompt.sequence_length, dtype, device, a.reps);
        copy_gbs = copy_rate_gbs(device, a.reps);
    }
    // Memory: a decoded token reads every decoder weight once and the KV cache as it stands halfway
    // through the decode (the cache grows by one row per layer per token).
    const int elt = int(at::elementSize(dtype));
    const TextConfig& tc = config.text;
    const double weight_read = double(decode_weight_bytes(tc, elt));
    const double kv_row = double(kv_cache_bytes(tc, std::vector<int64_t>(size_t(tc.num_hidden_layers), 1), elt));
    const double weights_compute = double(info.num_parameters) * elt;
    for (Row& r : rows) {
        r.decode_bytes = weight_read + std::max(0.0, double(r.kv_bytes) - 0.5 * r.out_tokens * kv_row);
        r.decode_bound_ms = copy_gbs > 0 ? r.decode_bytes / (copy_gbs * 1e9) * 1e3 : 0;
        r.decode_fraction = r.decode_per_token.median > 0 ? r.decode_bound_ms / r.decode_per_token.median : 0;
        r.rss_over_weights = weights_compute > 0 && r.peak_rss > 0
                                 ? double(r.peak_rss - runtime_rss) / weights_compute : 0;
    }
    const double prefill_gflops = base.prefill.median > 0 ? base.prefill_flops / (base.prefill.median * 1e6) : 0;
    const double tokens_per_s = base.prefill.median > 0 ? 1000.0 * base.seq / base.prefill.median : 0;

    nlohmann::ordered_json meta = {{"model", info.name},
                           {"model_dir", info.dir},
                           {"random_weights", info.random_weights},
                           {"device", info.device},
                           {"dtype", info.compute_dtype},
                           {"threads", info.threads},
                           {"sequence_length", prompt.sequence_length},
                           {"image_tokens", prompt.image_span_length},
                           {"reps", a.reps},
                           {"warmup", a.warmup},
                           {"n_predict", a.n_predict},
                           {"vanilla_prefill_tokens_per_s", tokens_per_s},
                           {"vanilla_prefill_gflops", prefill_gflops},
                           {"gemm_reference_gflops", gemm_gflops},
                           {"fraction_of_gemm_peak", gemm_gflops > 0 ? prefill_gflops / gemm_gflops : 0},
                           {"copy_rate_gb_per_s", copy_gbs},
                           {"decode_weight_bytes_per_token", weight_read},
                           {"weight_bytes_compute_dtype", weights_compute},
                           {"runtime_rss_bytes", runtime_rss}};
    auto row_json = [&](const Row& r) {
        nlohmann::ordered_json j = {{"method", r.config.method},
                            {"label", r.config.label()},
                            {"layer", r.config.method == "none" ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.config.layer)},
                            {"budget", r.budget},
                            {"kept", r.kept},
                            {"pivots_image", r.config.pivots_image},
                            {"image_tokens", r.n_image},
                            {"seq_after", r.seq_after},
                            {"vision_ms", r.vision.median},
                            {"prefill_ms", r.prefill.median},
                            {"prefill_ms_min", r.prefill.min},
                            {"prefill_ms_max", r.prefill.max},
                            {"selection_ms", r.selection.median},
                            {"selection_pct_of_prefill", r.prefill.median > 0 ? 100.0 * r.selection.median / r.prefill.median : 0},
                            {"decode_ms_per_token", r.decode_per_token.median},
                            {"ttft_ms", r.ttft.median},
                            {"total_ms", r.total.median},
                            {"total_ms_min", r.total.min},
                            {"total_ms_max", r.total.max},
                            {"prefill_gflop", r.prefill_flops / 1e9},
                            {"decode_mflop_per_token", r.decode_flops / 1e6},
                            {"kv_cache_bytes", r.kv_bytes},
                            {"kv_cache_allocated_bytes", r.kv_alloc},
                            {"peak_rss_bytes", r.peak_rss},
                            {"rss_over_runtime_per_weight_byte", r.rss_over_weights},
                            {"decode_bytes_per_token", r.decode_bytes},
                            {"decode_memory_bound_ms", r.decode_bound_ms},
                            {"decode_fraction_of_memory_bound", r.decode_fraction},
                            {"device_peak_bytes", r.device_peak},
                            {"prefill_speedup", r.speedup},
                            {"flop_ratio", r.flop_ratio},
                            {"efficiency", r.efficiency},
                            {"output_tokens", r.out_tokens},
                            {"page_faults_per_run", r.faults.median}};
        if (r.rerun.median > 0) {
            j["prefix_cache_rerun_ms"] = r.rerun.median;
            j["prefix_cache_gain"] = base.prefill.median / r.rerun.median;
        }
        return j;
    };

    std::ostringstream out;
    if (a.output == "json") {
        nlohmann::ordered_json j = meta;
        j["results"] = nlohmann::ordered_json::array();
        for (const Row& r : rows) j["results"].push_back(row_json(r));
        out << j.dump(1) << "\n";
    } else if (a.output == "jsonl") {
        for (const Row& r : rows) {
            nlohmann::ordered_json j = row_json(r);
            for (auto it = meta.begin(); it != meta.end(); ++it) j[it.key()] = it.value();
            out << j.dump() << "\n";
        }
    } else if (a.output == "csv") {
        std::vector<std::string> keys;
        for (const Row& r : rows) {
            const nlohmann::ordered_json j = row_json(r);
            for (auto it = j.begin(); it != j.end(); ++it)
                if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) keys.push_back(it.key());
        }
        for (size_t i = 0; i < keys.size(); ++i) out << (i ? "," : "") << keys[i];
        out << "\n";
        for (const Row& r : rows) {
            const nlohmann::ordered_json j = row_json(r);
            for (size_t i = 0; i < keys.size(); ++i) {
                out << (i ? "," : "");
                if (j.contains(keys[i]) && !j[keys[i]].is_null())
                    out << (j[keys[i]].is_string() ? j[keys[i]].get<std::string>() : j[keys[i]].dump());
            }
            out << "\n";
        }
    } else if (a.output == "md") {
        out << "model: " << info.name << (info.random_weights ? " (random weights)" : "") << " | device "
            << info.device << " | " << info.compute_dtype << " | threads " << info.threads << " | S = "
            << prompt.sequence_length << " (" << prompt.image_span_length << " image tokens) | reps "
            << a.reps << " (+" << a.warmup << " warm-up) | n = " << a.n_predict << "\n\n";
        out << "| method | K | B | kept | vision ms | prefill ms (min-max) | select ms (% prefill) | decode ms/tok | "
               "decode / memory bound | TTFT ms | total ms | prefill GFLOP | KV MiB | peak RSS MiB | RSS / weights | "
               "speedup | FLOP ratio | efficiency | cache re-run ms (gain) |\n";
        out << "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
        for (const Row& r : rows) {
            const bool none = r.config.method == "none";
            out << "| " << r.config.method << (r.config.method == "dart" && r.config.pivots_image != 4
                                                  ? " P=" + std::to_string(r.config.pivots_image) : "")
                << " | " << (none ? "-" : std::to_string(r.config.layer)) << " | " << r.budget << " | " << r.kept
                << " | " << fmt(r.vision.median) << " | " << fmt(r.prefill.median) << " (" << fmt(r.prefill.min)
                << "-" << fmt(r.prefill.max) << ") | " << fmt(r.selection.median, 3) << " ("
                << fmt(r.prefill.median > 0 ? 100.0 * r.selection.median / r.prefill.median : 0) << "%) | "
                << fmt(r.decode_per_token.median) << " | " << fmt(r.decode_fraction) << " | " << fmt(r.ttft.median)
                << " | " << fmt(r.total.median)
                << " | " << fmt(r.prefill_flops / 1e9, 3) << " | " << fmt(double(r.kv_bytes) / (1 << 20), 2) << " | "
                << fmt(double(r.peak_rss) / (1 << 20), 0) << " | " << fmt(r.rss_over_weights) << " | "
                << fmt(r.speedup) << "x | "
                << fmt(r.flop_ratio, 3) << " | " << fmt(r.efficiency) << " | "
                << (r.rerun.median > 0 ? fmt(r.rerun.median) + " (" + fmt(base.prefill.median / r.rerun.median, 1) + "x)"
                                       : std::string("-"))
                << " |\n";
        }
        out << "\nvanilla prefill: " << fmt(tokens_per_s, 0) << " tokens/s, " << fmt(prefill_gflops, 1)
            << " GFLOP/s; GEMM on the same shapes: " << fmt(gemm_gflops, 1) << " GFLOP/s; fraction of peak "
            << fmt(gemm_gflops > 0 ? prefill_gflops / gemm_gflops : 0, 3) << "\n";
        out << "memory: copy rate " << fmt(copy_gbs, 1) << " GB/s (read + written); a decoded token reads "
            << fmt(weight_read / (1 << 20), 1) << " MiB of weights + the KV cache; weights in " << info.compute_dtype
            << " " << fmt(weights_compute / (1 << 20), 1) << " MiB; runtime RSS before loading "
            << fmt(double(runtime_rss) / (1 << 20), 0) << " MiB; minor page faults per run:";
        for (const Row& r : rows) out << " " << r.config.label() << " " << fmt(r.faults.median, 0) << ";";
        out << "\n";
        if (device_memory_available()) {
            out << "device peak memory (MiB):";
            for (const Row& r : rows) out << " " << r.config.label() << " " << fmt(double(r.device_peak) / (1 << 20), 1) << ";";
            out << "\n";
        }
        out
            << "speedup = prefill(none) / prefill(method), measured in this run; FLOP ratio = prefill "
               "FLOPs(method) / FLOPs(none); efficiency = speedup x FLOP ratio (1.0 = the FLOP bound); decode / memory "
               "bound = (bytes a token reads / copy rate) / measured ms per token; RSS / weights = (peak RSS - runtime "
               "RSS) / weight bytes in the compute dtype\n";
    } else {
        throw Error(str_cat("-o: unknown format '", a.output, "' (md, csv, json, jsonl)"));
    }
    if (a.out_path.empty() || a.out_path == "-") {
        std::cout << out.str();
    } else {
        std::ofstream f(a.out_path);
        f << out.str();
        if (!f) throw Error(str_cat(a.out_path, ": cannot write"));
    }
    return 0;
}

}  // namespace dl
