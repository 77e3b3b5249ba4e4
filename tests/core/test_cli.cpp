// The CLI contract: flags, JSON field names, .npy logits, exit codes, one-line errors naming the
// file/tensor/parameter at fault. Drives the real dartlens-cli binary on a generated tiny model.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include <filesystem>
#include <fstream>

#include "core/io/npy.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

using dltest::cli;
std::string sample_image() { return dltest::sample_image(); }

const std::string& model_dir() {
    static std::string dir;
    if (dir.empty()) {
        dir = dltest::scratch_dir("cli-model") + "/tiny";
        std::string out;
        const int rc = dltest::run_command(cli() + " make-model --preset tiny --out " + dir + " --seed 3", &out);
        EXPECT_EQ(rc, 0) << out;
    }
    return dir;
}

std::string expect_error(const std::string& args) { return dltest::expect_cli_error(args); }

std::string copy_model(const std::string& name) {
    const std::string dir = dltest::scratch_dir("cli-" + name);
    fs::copy(model_dir(), dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    return dir;
}

TEST(Cli, RunWritesContractJson) {
    const std::string dir = dltest::scratch_dir("cli-json");
    std::string out;
    const std::string cmd = cli() + " run -m " + model_dir() + " --image " + sample_image() +
                            " -p 'What colour is the ball?' -n 5 -t 2 --json " + dir + "/r.json --dump-logits " + dir +
                            "/l.npy --method dart --layer 2 --keep 8";
    ASSERT_EQ(dltest::run_command(cmd, &out), 0) << out;
    nlohmann::json j = nlohmann::json::parse(dltest::read_file(dir + "/r.json"));
    for (const char* key : {"prompt_ids", "image_span", "output_ids", "text", "timing_ms", "pruning"})
        EXPECT_TRUE(j.contains(key)) << key;
    for (const char* key : {"load", "vision", "prefill", "decode", "total"}) EXPECT_TRUE(j["timing_ms"].contains(key)) << key;
    const auto& p = j["pruning"];
    for (const char* key : {"method", "layer", "budget", "kept_count", "kept_image_indices", "pivot_image_indices",
                            "pivot_text_indices", "key_l1", "fastv_score", "dup_max"})
        EXPECT_TRUE(p.contains(key)) << key;
    const int n = j["image_span"]["length"];
    EXPECT_EQ(p["method"], "dart");
    EXPECT_EQ(p["budget"], 8);
    EXPECT_EQ(p["kept_image_indices"].size(), size_t(p["kept_count"].get<int>()));
    EXPECT_EQ(p["key_l1"].size(), size_t(n));
    EXPECT_EQ(p["dup_max"].size(), size_t(n));
    EXPECT_LE(j["output_ids"].size(), 5u);
    // The image placeholder is not expanded in prompt_ids; the span is.
    EXPECT_EQ(j["prompt_ids"].size() - 1 + size_t(n), size_t(j["sequence_length"].get<int>()));
    at::Tensor logits = dl::npy_load(dir + "/l.npy");
    EXPECT_EQ(logits.dim(), 1);
    EXPECT_EQ(logits.scalar_type(), at::kFloat);
    // Greedy: the first output token is the argmax of the dumped logits.
    if (!j["output_ids"].empty()) EXPECT_EQ(logits.argmax().item<int64_t>(), j["output_ids"][0].get<int64_t>());
}

TEST(Cli, JsonToStdoutIsPureJson) {
    std::string out;
    const std::string cmd = "(" + cli() + " run -m " + model_dir() + " --image " + sample_image() +
                            " -p 'Describe it.' -n 2 --compare none,dart --keep 4 --json - 2>/dev/null)";
    ASSERT_EQ(dltest::run_command(cmd, &out), 0) << out;
    nlohmann::json j = nlohmann::json::parse(out);  // throws (fails) if answers were mixed in
    EXPECT_EQ(j["runs"].size(), 2u);
}

TEST(Cli, CompareWritesRunsAndExports) {
    const std::string dir = dltest::scratch_dir("cli-compare");
    std::string out;
    const std::string cmd = cli() + " run -m " + model_dir() + " --image " + sample_image() +
                            " -p 'Describe it.' -n 3 --compare dart,fastv,none --keep 6 --json " + dir +
                            "/r.json --export " + dir + "/export";
    ASSERT_EQ(dltest::run_command(cmd, &out), 0) << out;
    nlohmann::json j = nlohmann::json::parse(dltest::read_file(dir + "/r.json"));
    ASSERT_EQ(j["runs"].size(), 3u);
    EXPECT_EQ(j["runs"][0]["pruning"]["method"], "dart");
    EXPECT_EQ(j["runs"][1]["pruning"]["method"], "fastv");
    EXPECT_EQ(j["runs"][2]["pruning"]["method"], "none");
    EXPECT_TRUE(fs::exists(dir + "/export/report.json"));
    EXPECT_TRUE(fs::exists(dir + "/export/composite.png"));
    EXPECT_TRUE(fs::exists(dir + "/export/figures.csv"));
    // A second export into the same directory must refuse, not replace.
    const std::string again = dltest::run_command(cmd, &out) == 0 ? "" : out;
    EXPECT_NE(again.find("exists"), std::string::npos) << out;
}

TEST(Cli, BadInputsGiveOneLineErrors) {
    const std::string m = model_dir();
    const std::string img = sample_image();
    const std::string tmp = dltest::scratch_dir("cli-bad");
    EXPECT_NE(expect_error("run -m " + m + " --image " + tmp + "/missing.png -p hi").find("missing.png"), std::string::npos);
    dltest::write_file(tmp + "/empty.jpg", "");
    EXPECT_NE(expect_error("run -m " + m + " --image " + tmp + "/empty.jpg -p hi").find("empty.jpg"), std::string::npos);
    dltest::write_file(tmp + "/text.png", "this is not an image");
    EXPECT_NE(expect_error("run -m " + m + " --image " + tmp + "/text.png -p hi").find("text.png"), std::string::npos);
    EXPECT_NE(expect_error("run -m " + m + " --image " + img + " -p '   '").find("empty"), std::string::npos);
    std::string longq;
    for (int i = 0; i < 400; ++i) longq += "word ";
    EXPECT_NE(expect_error("run -m " + m + " --image " + img + " -p '" + longq + "'").find("context"), std::string::npos);
    EXPECT_NE(expect_error("run -m " + m + " --image " + img + " -p hi --method dart --layer 50 --keep 4").find("layer"),
              std::string::npos);
    EXPECT_NE(expect_error("run -m " + tmp + "/nomodel --image " + img + " -p hi").find("nomodel"), std::string::npos);
    // A pruning method without a budget would silently keep everything: refused, naming the flags.
    EXPECT_NE(expect_error("run -m " + m + " --image " + img + " -p hi --method dart").find("--keep"), std::string::npos);
    EXPECT_NE(expect_error("run -m " + m + " --image " + img + " -p hi --compare none,fastv").find("--ratio"),
              std::string::npos);

    // Truncated weights.
    const std::string trunc = copy_model("trunc");
    fs::resize_file(trunc + "/model.safetensors", fs::file_size(trunc + "/model.safetensors") / 2);
    EXPECT_NE(expect_error("run -m " + trunc + " --image " + img + " -p hi").find("model.safetensors"), std::string::npos);
    // Missing config key that has no default.
    const std::string nocfg = copy_model("nocfg");
    nlohmann::json cfg = nlohmann::json::parse(dltest::read_file(nocfg + "/config.json"));
    cfg["text_config"]["hidden_size"] = "sixty-four";
    dltest::write_file(nocfg + "/config.json", cfg.dump());
    EXPECT_NE(expect_error("run -m " + nocfg + " --image " + img + " -p hi").find("hidden_size"), std::string::npos);
    // Missing tokenizer.
    const std::string notok = copy_model("notok");
    fs::remove(notok + "/tokenizer.model");
    EXPECT_NE(expect_error("run -m " + notok + " --image " + img + " -p hi").find("tokenizer.model"), std::string::npos);
}

// "--device cuda" where there is no GPU: exit 1 with one line naming the device, in both builds
// (Debian's CPU LibTorch: "without CUDA"; the PyTorch wheel's: "no CUDA GPU found"), before any
// file of the model directory is read.
TEST(Cli, CudaWithoutGpuIsOneLine) {
    if (torch::cuda::device_count() > 0) GTEST_SKIP() << "this machine has a GPU";
    for (const char* dev : {"cuda", "cuda:1"}) {
        const std::string out = expect_error("run -m /nonexistent-model --image " + sample_image() + " -p hi --device " + dev);
        EXPECT_NE(out.find(std::string("device '") + dev + "'"), std::string::npos) << out;
        EXPECT_EQ(out.find("nonexistent-model"), std::string::npos) << out;
    }
    const std::string b = expect_error("bench --preset tiny --device cuda -r 1 --warmup 0 -n 1");
    EXPECT_NE(b.find("device 'cuda'"), std::string::npos) << b;
}

// bench's memory figures: the weight bytes a decoded token reads, counted here from config.json
// by hand; the memory bound is those bytes (+ the KV cache) over the copy rate it measured; RSS is
// stated over the runtime's own resident memory per weight byte.
TEST(Cli, BenchReportsDecodeBytesAgainstTheCopyRate) {
    std::string out;
    const std::string path = dltest::scratch_dir("cli-bench-memory") + "/bench.json";
    const int rc = dltest::run_command(cli() + " bench -m " + model_dir() + " --method none -r 1 --warmup 0 -n 3 -t 1 "
                                       "--no-prefix-cache -o json --out " + path, &out);
    ASSERT_EQ(rc, 0) << out;
    const nlohmann::json j = nlohmann::json::parse(dltest::read_file(path));
    const nlohmann::json c = nlohmann::json::parse(dltest::read_file(model_dir() + "/config.json"))["text_config"];
    // (a key equal to LlamaConfig's default may be left out)
    const int64_t d = c.value("hidden_size", 4096), I = c.value("intermediate_size", 11008);
    const int64_t L = c.value("num_hidden_layers", 32), V = c.value("vocab_size", 32000);
    const int64_t H = c.value("num_attention_heads", 32), Hkv = c.value("num_key_value_heads", H);
    const int64_t D = c.value("head_dim", d / H);
    // per layer: q, k, v, o, gate, up, down and two norms; then the final norm, lm_head, one embedding row
    const int64_t elements = L * (d * H * D + 2 * d * Hkv * D + H * D * d + 3 * d * I + 2 * d) + d + V * d + d;
    ASSERT_EQ(j["dtype"], "f32");
    EXPECT_EQ(j["decode_weight_bytes_per_token"].get<double>(), double(elements * 4));
    const nlohmann::json& r = j["results"][0];
    const double copy = j["copy_rate_gb_per_s"];
    ASSERT_GT(copy, 0);
    EXPECT_GT(r["decode_bytes_per_token"].get<double>(), double(elements * 4));  // + the KV cache
    EXPECT_NEAR(r["decode_memory_bound_ms"].get<double>(), r["decode_bytes_per_token"].get<double>() / (copy * 1e6),
                1e-9 * r["decode_memory_bound_ms"].get<double>() + 1e-12);
    EXPECT_NEAR(r["decode_fraction_of_memory_bound"].get<double>(),
                r["decode_memory_bound_ms"].get<double>() / r["decode_ms_per_token"].get<double>(), 1e-9);
    EXPECT_GT(j["runtime_rss_bytes"].get<double>(), 0);
    EXPECT_GT(r["peak_rss_bytes"].get<double>(), j["runtime_rss_bytes"].get<double>());
    EXPECT_GE(r["page_faults_per_run"].get<double>(), 0);
}

}  // namespace

// app/runtime_defaults.h: the computing commands run with GOMP_SPINCOUNT=1000 and, on CPUs with
// AVX2 / AVX-512, OpenBLAS's Haswell / SkylakeX kernels, unless the user set them or
// DARTLENS_RUNTIME_DEFAULTS=0. The libraries themselves report what they read (libgomp:
// OMP_DISPLAY_ENV=verbose; OpenBLAS: OPENBLAS_VERBOSE=2 prints "Core: NAME"), so this is checked
// in the runtimes, not in our code.
TEST(Cli, RuntimeDefaultsReachLibgompAndOpenblas) {
    auto report = [&](const std::string& env, const std::string& args, const std::string& key, char end) {
        std::string out;
        dltest::run_command("env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY -u OPENBLAS_CORETYPE OMP_DISPLAY_ENV=verbose "
                            "OPENBLAS_VERBOSE=2 " + env + " " + cli() + " " + args,
                            &out);
        const size_t at = out.find(key);
        if (at == std::string::npos) return std::string("?");
        const size_t from = at + key.size();
        return out.substr(from, out.find(end, from) - from);
    };
    auto spin = [&](const std::string& env, const std::string& args) { return report(env, args, "GOMP_SPINCOUNT = '", '\''); };
    auto core = [&](const std::string& env, const std::string& args) { return report(env, args, "Core: ", '\n'); };
    const std::string run = "run -m " + model_dir() + " --image " + sample_image() + " -p x -n 1 -t 1";
    const std::string plain = spin("DARTLENS_RUNTIME_DEFAULTS=0", run);
    if (plain == "?") {
        std::printf("this OpenMP runtime does not report GOMP_SPINCOUNT (not libgomp): spin not checked\n");
    } else {
        EXPECT_NE(plain, "1000");
        EXPECT_EQ(spin("", run), "1000");
        EXPECT_EQ(spin("GOMP_SPINCOUNT=4242", run), "4242");              // the user's setting wins
        EXPECT_EQ(spin("", "tokenize -m " + model_dir() + " -p x"), plain);  // no model run: started once
    }
    // OpenBLAS (Debian's LibTorch; the PyTorch wheel's MKL prints nothing): the kernel family this
    // CPU's vector units support, whatever OpenBLAS's own detection says.
    if (core("DARTLENS_RUNTIME_DEFAULTS=0", run) == "?") {
        std::printf("no OpenBLAS report (not an OpenBLAS build): kernel choice not checked\n");
        return;
    }
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx512 || avx2) EXPECT_EQ(core("", run), avx512 ? "SkylakeX" : "Haswell");
    EXPECT_EQ(core("OPENBLAS_CORETYPE=Prescott", run), "Prescott");  // the user's setting wins
}
