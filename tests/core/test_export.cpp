// Tests for core/export: atomic no-replace writes, and export_all's files read back (PNG sizes,
// CSV parsed by an independent RFC 4180 reader, JSON byte-equal), all-or-nothing refusal when a
// file exists, and overwrite replacing.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "core/common.h"
#include "core/render/export.h"
#include "core/io/config.h"
#include "core/io/image.h"
#include "core/io/image_next.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string field;
    bool quoted = false, any = false;
    for (size_t i = 0; i < text.size(); i++) {
        const char c = text[i];
        any = true;
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') { field += '"'; i++; }
            else if (c == '"') quoted = false;
            else field += c;
        } else if (c == '"') quoted = true;
        else if (c == ',') { row.push_back(field); field.clear(); }
        else if (c == '\n') { row.push_back(field); field.clear(); rows.push_back(row); row.clear(); any = false; }
        else if (c != '\r') field += c;
    }
    EXPECT_FALSE(quoted) << "unterminated quote";
    if (any) { row.push_back(field); rows.push_back(row); }
    return rows;
}

std::vector<std::string> dir_listing(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

dl::ExportRequest make_request(const std::string& dir) {
    dl::ExportRequest r;
    r.dir = dir;
    r.original.width = 120;
    r.original.height = 80;
    r.original.pixels.assign(120 * 80 * 3, 90);
    dl::PreprocessorConfig cfg;
    cfg.shortest_edge = 56;
    cfg.crop_width = cfg.crop_height = 56;
    r.geometry = dl::preprocess_image(cv::Mat(80, 120, CV_8UC3), cfg, "crop", 14).geometry;
    dl::MethodRun none, dart, fastv;
    none.config.method = "none";
    none.pruning.method = "none";
    none.pruning.num_image_tokens = 16;
    none.pruning.kept_count = 16;
    none.pruning.budget = 16;
    none.timing_ms.prefill = 300;
    none.timing_ms.total = 900;
    none.kv_cache_bytes = 123456789;
    none.output_ids = {5, 6, 7};
    none.text = "He said \"hi\", then left\nnew line";
    dart.config.method = "dart";
    dart.config.layer = 2;
    dart.config.keep = 4;
    dart.pruning.method = "dart";
    dart.pruning.budget = 4;
    dart.pruning.kept_count = 4;
    dart.pruning.num_image_tokens = 16;
    dart.pruning.kept_image_indices = {1, 2, 3, 4};
    dart.timing_ms.vision = 12.3456;
    dart.timing_ms.prefill = 120;
    dart.timing_ms.selection = 0.5;
    dart.timing_ms.decode = 400;
    dart.timing_ms.ttft = 140;
    dart.timing_ms.total = 560;
    dart.kv_cache_bytes = 1000;
    dart.output_ids = {1, 2};
    dart.text = "plain";
    fastv.config.method = "fastv";
    fastv.config.layer = 3;
    fastv.pruning.method = "fastv";
    fastv.pruning.kept_count = 8;
    fastv.pruning.num_image_tokens = 16;
    fastv.timing_ms.prefill = 0;  // no timing: no speedup
    r.runs = {none, dart, fastv};
    r.question = "What?";
    r.report_json = "{\"version\": 1, \"runs\": [1, 2, 3]}\n";
    return r;
}

}  // namespace

TEST(WriteFileAtomic, CreateRefuseReplace) {
    const std::string dir = dltest::scratch_dir("export_atomic");
    const std::string path = dir + "/a.txt";
    dl::write_file_atomic(path, "first", false);
    EXPECT_EQ(dltest::read_file(path), "first");
    try {
        dl::write_file_atomic(path, "second", false);
        ADD_FAILURE() << "existing file replaced";
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    EXPECT_EQ(dltest::read_file(path), "first");
    dl::write_file_atomic(path, "third", true);
    EXPECT_EQ(dltest::read_file(path), "third");
    // Binary content with NULs survives; no temporary files are left behind.
    const std::string bin("a\0b\0c", 5);
    dl::write_file_atomic(dir + "/b.bin", bin, false);
    EXPECT_EQ(dltest::read_file(dir + "/b.bin"), bin);
    EXPECT_EQ(dir_listing(dir), (std::vector<std::string>{"a.txt", "b.bin"}));
    // A missing directory is an error naming the path.
    const std::string bad = dir + "/no/such/dir/c.txt";
    try {
        dl::write_file_atomic(bad, "x", false);
        ADD_FAILURE() << "no error";
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
}

TEST(Export, FilesReadBack) {
    const std::string dir = dltest::scratch_dir("export_all") + "/out";  // created by export_all
    const dl::ExportRequest req = make_request(dir);
    const std::vector<std::string> paths = dl::export_all(req);
    const std::vector<std::string> names = {"overlay_0_none.png", "overlay_1_dart.png", "overlay_2_fastv.png",
                                            "composite.png", "report.json", "figures.csv"};
    ASSERT_EQ(paths.size(), names.size());
    for (size_t i = 0; i < names.size(); i++) EXPECT_EQ(paths[i], dir + "/" + names[i]);
    std::vector<std::string> sorted = names;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(dir_listing(dir), sorted);

    for (int i = 0; i < 3; i++) {
        cv::Mat m = cv::imread(paths[i], cv::IMREAD_COLOR);
        ASSERT_FALSE(m.empty()) << paths[i];
        EXPECT_EQ(m.cols, 120);
        EXPECT_EQ(m.rows, 80 + dl::overlay_legend_height(120));
    }
    cv::Mat comp = cv::imread(dir + "/composite.png", cv::IMREAD_COLOR);
    ASSERT_FALSE(comp.empty());
    EXPECT_EQ(comp.cols, 3 * 360 + 4 * 12);
    EXPECT_EQ(dltest::read_file(dir + "/report.json"), req.report_json);

    const auto rows = parse_csv(dltest::read_file(dir + "/figures.csv"));
    ASSERT_EQ(rows.size(), 4u);
    const std::vector<std::string> header = {"method", "layer", "budget", "kept_count", "vision_ms", "prefill_ms",
                                             "selection_ms", "decode_ms", "ttft_ms", "total_ms", "speedup_vs_none",
                                             "kv_cache_bytes", "output_tokens", "text"};
    EXPECT_EQ(rows[0], header);
    for (const auto& r : rows) ASSERT_EQ(r.size(), header.size());
    EXPECT_EQ(rows[1][0], "none");
    EXPECT_EQ(rows[1][10], "1.000");
    EXPECT_EQ(rows[1][11], "123456789");
    EXPECT_EQ(rows[1][12], "3");
    EXPECT_EQ(rows[1][13], req.runs[0].text);  // quotes, comma and newline round-trip
    EXPECT_EQ(rows[2][0], "dart");
    EXPECT_EQ(rows[2][1], "2");
    EXPECT_EQ(rows[2][2], "4");
    EXPECT_EQ(rows[2][3], "4");
    EXPECT_EQ(rows[2][4], "12.346");
    EXPECT_DOUBLE_EQ(std::stod(rows[2][5]), 120.0);
    EXPECT_EQ(rows[2][10], "2.500");  // 300 / 120
    EXPECT_EQ(rows[2][13], "plain");
    EXPECT_EQ(rows[3][0], "fastv");
    EXPECT_EQ(rows[3][10], "");       // prefill 0: no ratio

    // Without a none run, the speedup column is empty.
    const auto no_none = parse_csv(dl::figures_csv({req.runs[1]}));
    ASSERT_EQ(no_none.size(), 2u);
    EXPECT_EQ(no_none[1][10], "");
}

TEST(Export, ExistingFileRefusedNothingWritten) {
    const std::string dir = dltest::scratch_dir("export_refuse");
    dltest::write_file(dir + "/figures.csv", "precious");
    const dl::ExportRequest req = make_request(dir);
    try {
        dl::export_all(req);
        ADD_FAILURE() << "export replaced an existing file";
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find(dir + "/figures.csv"), std::string::npos) << e.what();
    }
    EXPECT_EQ(dir_listing(dir), (std::vector<std::string>{"figures.csv"}));
    EXPECT_EQ(dltest::read_file(dir + "/figures.csv"), "precious");

    dl::ExportRequest again = req;
    again.overwrite = true;
    const auto paths = dl::export_all(again);
    EXPECT_EQ(paths.size(), 6u);
    EXPECT_NE(dltest::read_file(dir + "/figures.csv"), "precious");
    EXPECT_EQ(dltest::read_file(dir + "/figures.csv").rfind("method,layer", 0), 0u);
    EXPECT_EQ(dir_listing(dir).size(), 6u);
    // A second export without overwrite is refused, naming the first existing file.
    EXPECT_THROW(dl::export_all(req), dl::Error);
    dl::ExportRequest empty = req;
    empty.runs.clear();
    EXPECT_THROW(dl::export_all(empty), dl::Error);
}

// LLaVA-NeXT: every overlay in both views (tiles, base). Half the span kept (the base image's
// tokens come first): the base view shows its kept tokens, the tile view fades every tile, so the
// two files differ; each equals render_overlay asked for that view.
TEST(Export, NextWritesTileAndBaseViews) {
    const std::string dir = dltest::scratch_dir("export_next") + "/out";
    dl::ExportRequest req = make_request(dir);
    const dl::LlavaConfig c = dl::LlavaConfig::from_json(
        nlohmann::json{{"model_type", "llava_next"}, {"text_config", {{"model_type", "llama"}}}}, "config.json");
    cv::Mat img(80, 120, CV_8UC3, cv::Scalar(90, 90, 90));
    req.geometry = dl::preprocess_image_next(img, dl::PreprocessorConfig{}, c).geometry;
    ASSERT_EQ(req.geometry.mode, "anyres");
    const int n = req.geometry.num_tokens();
    ASSERT_GT(n, 576);
    req.runs.resize(2);
    dl::PruningResult& p = req.runs[1].pruning;
    p.method = "dart";
    p.num_image_tokens = n;
    for (int i = 0; i < 576; i += 2) p.kept_image_indices.push_back(i);
    p.kept_count = int(p.kept_image_indices.size());
    req.runs[0].pruning.num_image_tokens = n;
    req.runs[0].pruning.kept_count = n;
    for (int i = 0; i < n; ++i) req.runs[0].pruning.kept_image_indices.push_back(i);
    const std::vector<std::string> names = {"overlay_0_none_tiles.png", "overlay_0_none_base.png",
                                            "overlay_1_dart_tiles.png", "overlay_1_dart_base.png",
                                            "composite.png", "report.json", "figures.csv"};
    EXPECT_EQ(dl::export_file_names(req), names);
    const std::vector<std::string> paths = dl::export_all(req);
    ASSERT_EQ(paths.size(), names.size());
    const std::string tiles = dltest::read_file(paths[2]), base = dltest::read_file(paths[3]);
    EXPECT_NE(tiles, base);
    for (const std::string view : {"tiles", "base"}) {
        dl::OverlayOptions o = req.overlay;
        o.view = view;
        const std::string expected = dl::encode_png(dl::render_overlay(req.original, req.geometry, p, o));
        EXPECT_EQ(view == std::string("tiles") ? tiles : base, expected) << view;
    }
}
