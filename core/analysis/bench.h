// `dartlens-cli bench`: llama-bench-style timing of pruning methods, budgets and layers.
//
// Every configuration is run cold (vision, layers < K on the full sequence, selection, layers
// >= K on the pruned one, decode) `warmup` + `reps` times through the same Session the GUI uses;
// medians and spreads are reported with analytic FLOPs, KV-cache bytes, peak RSS, the prefill
// speedup versus `none` measured in the same process, and efficiency = measured prefill speedup /
// FLOP ratio. It also times a re-run from the prefix cache (budget change) and the GEMM rate
// LibTorch reaches on the model's own prefill shapes, to say how close the engine gets to peak.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dl {

struct BenchArgs {
    std::string model_dir;              // -m
    std::string preset;                 // --preset: generate a model into a temp dir instead
    std::string image;                  // default: the bundled resources/sample.jpg
    std::string prompt = "Describe the image in detail.";
    std::string methods = "none,dart,fastv";
    std::string keep;                   // list/range of budgets B, e.g. "64,128,192" or "64-192+64"
    std::string ratio;                  // list of reduction ratios, e.g. "0.778,0.889"
    std::string layers = "2";
    std::string pivots_image = "4";
    int reps = 3, warmup = 1, threads = 0, n_predict = 16;
    std::string device = "auto", dtype = "auto", output = "md", template_name = "llava_v1";
    std::string out_path;               // default stdout
    uint64_t seed = 0;
    bool gemm_peak = true;              // measure the GEMM reference rate
    bool prefix_cache = true;           // measure the re-run from the prefix cache
};

// Parses "1,2,3", "64-192+64" (first-last+step) and mixes of both. Throws dl::Error naming `flag`.
std::vector<int> parse_int_list(const std::string& text, const std::string& flag);
std::vector<double> parse_double_list(const std::string& text, const std::string& flag);

// Runs the sweep and prints the table. Returns the process exit status.
int run_bench(const BenchArgs& args);

}  // namespace dl
