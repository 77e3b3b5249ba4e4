// The JSON report is a contract other tools parse: a golden file pins its exact shape
// (tests/data/golden/report.expected.json; regenerate deliberately with DARTLENS_UPDATE_GOLDEN=1).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>

#include "core/report.h"
#include "test_util.h"

namespace {

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
    none.prefill_tokens_after = 9;

    dl::MethodRun dart;
    dart.config.method = "dart";
    dart.config.keep = 2;
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
    dart.output_ids = {5};
    dart.text = "a house";
    dart.timing_ms = {100, 10, 20, 1, 10, 30, 40};
    dart.kv_cache_bytes = 2048;
    dart.prefill_tokens_after = 8;
    return {dart, none};
}

TEST(Report, MatchesGoldenFile) {
    dl::ModelInfo m;
    m.dir = "/models/x";
    m.name = "x";
    m.weight_dtype = "F16";
    m.compute_dtype = "f32";
    m.device = "cpu";
    m.layout = "llava-hf";
    m.num_layers = 3;
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
    g.scale_x = g.scale_y = 1.0;
    g.offset_x = -14;
    const std::string got = dl::report_json(m, p, g, sample_runs(), "q");
    const std::string path = dltest::data_dir() + "/golden/report.expected.json";
    if (std::getenv("DARTLENS_UPDATE_GOLDEN")) dltest::write_file(path, got + "\n");
    const std::string want = dltest::read_file(path);
    EXPECT_EQ(got + "\n", want) << "report JSON drifted from " << path;

    // Field contract, independently of formatting.
    const nlohmann::json j = nlohmann::json::parse(got);
    EXPECT_EQ(j["runs"].size(), 2u);
    EXPECT_EQ(j["image_span"]["start"], 2);
    EXPECT_DOUBLE_EQ(j["runs"][0]["prefill_speedup_vs_none"].get<double>(), 40.0 / 20.0);
    EXPECT_TRUE(j["runs"][1]["pruning"]["fastv_score"].is_null());
}

TEST(Report, SingleRunFieldsAtTopLevel) {
    std::vector<dl::MethodRun> runs = {sample_runs()[0]};
    const nlohmann::json j = nlohmann::json::parse(dl::report_json({}, {}, {}, runs, "q"));
    EXPECT_EQ(j["text"], "a house");
    EXPECT_EQ(j["pruning"]["kept_count"], 3);
    EXPECT_EQ(j["output_ids"], nlohmann::json::array({5}));
    EXPECT_EQ(j["runs"].size(), 1u);
}

}  // namespace
