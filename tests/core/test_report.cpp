// The JSON report is a contract other tools parse. Each field is checked against the inputs the
// test builds (and prefill_speedup_vs_none against its formula), and the key set of every object
// against the list written here from report.h's contract, so a renamed, dropped or unannounced
// field fails; nothing is compared with output the code under test wrote itself.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>
#include <string>

#include "core/analysis/report.h"

namespace {

using nlohmann::json;

std::vector<dl::MethodRun> sample_runs() {
    dl::MethodRun none;
    none.config.method = "none";
    none.pruning.method = "none";
    none.pruning.budget = none.pruning.kept_count = none.pruning.num_image_tokens = 4;
    none.pruning.kept_image_indices = {0, 1, 2, 3};
    none.output_ids = {5, 6};
    none.text = "a red \"house\"";
    none.timing_ms = {100, 10, 40, 0, 20, 50, 70};
    none.kv_cache_bytes = 4096;
    none.kv_cache_allocated_bytes = 8192;
    none.prefill_tokens_after = 9;
    none.prefill_flops = 1.5e9;
    none.decode_flops_per_token = 2.5e6;
    none.from_prefix_cache = false;

    dl::MethodRun dart;
    dart.config.method = "dart";
    dart.config.keep = 2;
    dart.config.seed = 7;
    dart.pruning.method = "dart";
    dart.pruning.layer = 2;
    dart.pruning.budget = 2;
    dart.pruning.kept_count = 3;
    dart.pruning.num_image_tokens = 4;
    dart.pruning.kept_image_indices = {0, 2, 3};
    dart.pruning.pivot_image_indices = {2};
    dart.pruning.pivot_text_indices = {8};
    dart.pruning.pivots = {{8, "text", 0}, {2, "image", 1}};
    dart.pruning.key_l1 = {1.5f, 2.5f, 3.5f, 0.5f};
    dart.pruning.dup_max = {0.25f, 0.5f, 1.0f, 0.75f};
    dart.pruning.pivot_similarity = {{0.1f, 0.2f, 0.3f, 0.4f}, {0.25f, 0.5f, 1.0f, 0.75f}};
    dart.pruning.selection_ms = 1.25;
    dart.output_ids = {5};
    dart.text = "a house";
    dart.timing_ms = {100, 10, 20, 1, 10, 30, 40};
    dart.kv_cache_bytes = 2048;
    dart.kv_cache_allocated_bytes = 3072;
    dart.prefill_tokens_after = 8;
    dart.prefill_flops = 1.0e9;
    dart.decode_flops_per_token = 2.0e6;
    dart.from_prefix_cache = true;
    return {dart, none};
}

std::set<std::string> keys_of(const json& j) {
    std::set<std::string> k;
    for (auto it = j.begin(); it != j.end(); ++it) k.insert(it.key());
    return k;
}

const std::set<std::string> kRunKeys = {
    "label", "method", "output_ids", "text", "timing_ms", "from_prefix_cache", "kv_cache_bytes",
    "kv_cache_allocated_bytes", "prefill_tokens_after_pruning", "prefill_flops", "decode_flops_per_token",
    "prefill_speedup_vs_none", "pruning", "cancelled"};

// Every field of one run object against the MethodRun it was written from.
void expect_run_equals(const json& j, const dl::MethodRun& r) {
    SCOPED_TRACE(r.config.method);
    EXPECT_EQ(j["label"], r.config.label());
    EXPECT_EQ(j["method"], r.config.method);
    EXPECT_EQ(j["output_ids"].get<std::vector<int>>(), r.output_ids);
    EXPECT_EQ(j["text"], r.text);
    const json& t = j["timing_ms"];
    EXPECT_EQ(keys_of(t), (std::set<std::string>{"load", "vision", "prefill", "selection", "decode", "ttft", "total"}));
    EXPECT_DOUBLE_EQ(t["load"].get<double>(), r.timing_ms.load);
    EXPECT_DOUBLE_EQ(t["vision"].get<double>(), r.timing_ms.vision);
    EXPECT_DOUBLE_EQ(t["prefill"].get<double>(), r.timing_ms.prefill);
    EXPECT_DOUBLE_EQ(t["selection"].get<double>(), r.timing_ms.selection);
    EXPECT_DOUBLE_EQ(t["decode"].get<double>(), r.timing_ms.decode);
    EXPECT_DOUBLE_EQ(t["ttft"].get<double>(), r.timing_ms.ttft);
    EXPECT_DOUBLE_EQ(t["total"].get<double>(), r.timing_ms.total);
    ASSERT_TRUE(j["from_prefix_cache"].is_boolean());
    EXPECT_EQ(j["from_prefix_cache"].get<bool>(), r.from_prefix_cache);
    EXPECT_EQ(j["kv_cache_bytes"].get<int64_t>(), r.kv_cache_bytes);
    EXPECT_EQ(j["kv_cache_allocated_bytes"].get<int64_t>(), r.kv_cache_allocated_bytes);
    EXPECT_EQ(j["prefill_tokens_after_pruning"].get<int>(), r.prefill_tokens_after);
    EXPECT_DOUBLE_EQ(j["prefill_flops"].get<double>(), r.prefill_flops);
    EXPECT_DOUBLE_EQ(j["decode_flops_per_token"].get<double>(), r.decode_flops_per_token);
    EXPECT_EQ(j["cancelled"].get<bool>(), r.cancelled);

    const json& p = j["pruning"];
    const dl::PruningResult& e = r.pruning;
    EXPECT_EQ(keys_of(p), (std::set<std::string>{"method", "layer", "budget", "kept_count", "num_image_tokens",
                                                 "kept_image_indices", "pivot_image_indices", "pivot_text_indices",
                                                 "pivots", "key_l1", "fastv_score", "dup_max", "pivot_similarity",
                                                 "selection_ms", "config"}));
    EXPECT_EQ(p["method"], e.method);
    EXPECT_EQ(p["layer"].get<int>(), e.layer);
    EXPECT_EQ(p["budget"].get<int>(), e.budget);
    EXPECT_EQ(p["kept_count"].get<int>(), e.kept_count);
    EXPECT_EQ(p["num_image_tokens"].get<int>(), e.num_image_tokens);
    EXPECT_EQ(p["kept_image_indices"].get<std::vector<int>>(), e.kept_image_indices);
    EXPECT_EQ(p["pivot_image_indices"].get<std::vector<int>>(), e.pivot_image_indices);
    EXPECT_EQ(p["pivot_text_indices"].get<std::vector<int>>(), e.pivot_text_indices);
    ASSERT_EQ(p["pivots"].size(), e.pivots.size());
    for (size_t i = 0; i < e.pivots.size(); ++i) {
        EXPECT_EQ(p["pivots"][i]["index"].get<int>(), e.pivots[i].index);
        EXPECT_EQ(p["pivots"][i]["role"], e.pivots[i].role);
        EXPECT_EQ(p["pivots"][i]["order"].get<int>(), e.pivots[i].order);
    }
    // Per-token vectors: null when the method did not compute them, else the floats as given.
    auto expect_floats = [](const json& v, const std::vector<float>& want, const char* name) {
        if (want.empty()) {
            EXPECT_TRUE(v.is_null()) << name;
        } else {
            EXPECT_EQ(v.get<std::vector<float>>(), want) << name;
        }
    };
    expect_floats(p["key_l1"], e.key_l1, "key_l1");
    expect_floats(p["fastv_score"], e.fastv_score, "fastv_score");
    expect_floats(p["dup_max"], e.dup_max, "dup_max");
    EXPECT_EQ(p["pivot_similarity"].get<std::vector<std::vector<float>>>(), e.pivot_similarity);
    EXPECT_DOUBLE_EQ(p["selection_ms"].get<double>(), e.selection_ms);
    const json& c = p["config"];
    EXPECT_EQ(c["keep"].get<int>(), r.config.keep);
    EXPECT_DOUBLE_EQ(c["ratio"].get<double>(), r.config.ratio);
    EXPECT_EQ(c["pivots_image"].get<int>(), r.config.pivots_image);
    EXPECT_EQ(c["pivots_text"].get<int>(), r.config.pivots_text);
    EXPECT_EQ(c["pivot_criterion"], r.config.pivot_criterion);
    EXPECT_EQ(c["pivot_order"], r.config.pivot_order);
    EXPECT_EQ(c["fastv_score"], r.config.fastv_score);
    EXPECT_EQ(c["dart_scores"], r.config.dart_scores);
    EXPECT_EQ(c["seed"].get<uint64_t>(), uint64_t(r.config.seed));
}

TEST(Report, FieldsEqualTheInputs) {
    dl::ModelInfo m;
    m.dir = "/models/x";
    m.name = "x";
    m.weight_dtype = "F16";
    m.compute_dtype = "f32";
    m.device = "cpu";
    m.layout = "llava-hf";
    m.weight_bytes = 123456;
    m.num_parameters = 61728;
    m.threads = 2;
    m.random_weights = true;
    m.num_layers = 3;
    m.preprocess = "pad";
    dl::PromptInfo p;
    p.prompt_ids = {1, 10, 317, 11};
    p.image_span_start = 2;
    p.image_span_length = 4;
    p.sequence_length = 7;
    p.prompt_text = "USER: <image>\nq ASSISTANT:";
    dl::ImageGeometry g;
    g.rows = g.cols = 2;
    g.patch_size = 14;
    g.image_size = 28;
    g.original_width = 56;
    g.original_height = 28;
    g.mode = "crop";
    g.scale_x = 0.5;
    g.scale_y = 1.0;
    g.offset_x = -14;
    g.offset_y = 3;
    const std::vector<dl::MethodRun> runs = sample_runs();
    const json j = json::parse(dl::report_json(m, p, g, runs, "q"));

    EXPECT_EQ(keys_of(j), (std::set<std::string>{"model", "question", "prompt_text", "prompt_ids", "image_span",
                                                 "sequence_length", "image_grid", "runs"}));
    const json& jm = j["model"];
    EXPECT_EQ(jm["dir"], m.dir);
    EXPECT_EQ(jm["name"], m.name);
    EXPECT_EQ(jm["weight_dtype"], m.weight_dtype);
    EXPECT_EQ(jm["compute_dtype"], m.compute_dtype);
    EXPECT_EQ(jm["device"], m.device);
    EXPECT_EQ(jm["layout"], m.layout);
    EXPECT_EQ(jm["weight_bytes"].get<int64_t>(), m.weight_bytes);
    EXPECT_EQ(jm["num_parameters"].get<int64_t>(), m.num_parameters);
    EXPECT_EQ(jm["threads"].get<int>(), m.threads);
    EXPECT_EQ(jm["random_weights"].get<bool>(), m.random_weights);
    EXPECT_EQ(jm["num_layers"].get<int>(), m.num_layers);
    EXPECT_EQ(jm["preprocess"], m.preprocess);
    EXPECT_EQ(j["question"], "q");
    EXPECT_EQ(j["prompt_text"], p.prompt_text);
    EXPECT_EQ(j["prompt_ids"].get<std::vector<int>>(), p.prompt_ids);
    EXPECT_EQ(j["image_span"]["start"].get<int>(), p.image_span_start);
    EXPECT_EQ(j["image_span"]["length"].get<int>(), p.image_span_length);
    EXPECT_EQ(j["sequence_length"].get<int>(), p.sequence_length);
    const json& jg = j["image_grid"];
    EXPECT_EQ(jg["rows"].get<int>(), g.rows);
    EXPECT_EQ(jg["cols"].get<int>(), g.cols);
    EXPECT_EQ(jg["patch_size"].get<int>(), g.patch_size);
    EXPECT_EQ(jg["image_size"].get<int>(), g.image_size);
    EXPECT_EQ(jg["original_width"].get<int>(), g.original_width);
    EXPECT_EQ(jg["original_height"].get<int>(), g.original_height);
    EXPECT_EQ(jg["mode"], g.mode);
    EXPECT_EQ(jg["scale"].get<std::vector<double>>(), (std::vector<double>{g.scale_x, g.scale_y}));
    EXPECT_EQ(jg["offset"].get<std::vector<double>>(), (std::vector<double>{g.offset_x, g.offset_y}));

    ASSERT_EQ(j["runs"].size(), runs.size());
    for (size_t i = 0; i < runs.size(); ++i) {
        EXPECT_EQ(keys_of(j["runs"][i]), kRunKeys);
        expect_run_equals(j["runs"][i], runs[i]);
    }
    // speedup = prefill of the unpruned run / this run's prefill (both given above)
    EXPECT_DOUBLE_EQ(j["runs"][0]["prefill_speedup_vs_none"].get<double>(), 40.0 / 20.0);
    EXPECT_DOUBLE_EQ(j["runs"][1]["prefill_speedup_vs_none"].get<double>(), 1.0);
    // the composed (cached) run and the measured one are told apart
    EXPECT_TRUE(j["runs"][0]["from_prefix_cache"].get<bool>());
    EXPECT_FALSE(j["runs"][1]["from_prefix_cache"].get<bool>());
}

TEST(Report, NoUnprunedRunMeansNoSpeedup) {
    const std::vector<dl::MethodRun> runs = {sample_runs()[0]};
    const json j = json::parse(dl::report_json({}, {}, {}, runs, "q"));
    EXPECT_FALSE(j["runs"][0].contains("prefill_speedup_vs_none"));
}

TEST(Report, SingleRunFieldsAtTopLevel) {
    std::vector<dl::MethodRun> runs = {sample_runs()[0]};
    const json j = json::parse(dl::report_json({}, {}, {}, runs, "q"));
    ASSERT_EQ(j["runs"].size(), 1u);
    // every field of the one run is also at the top level, with the same value
    for (auto it = j["runs"][0].begin(); it != j["runs"][0].end(); ++it) EXPECT_EQ(j[it.key()], it.value()) << it.key();
    expect_run_equals(j, runs[0]);
}

}  // namespace
