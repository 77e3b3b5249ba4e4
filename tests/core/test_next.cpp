// LLaVA-NeXT pieces against hand computations: select_best_resolution and the span layout on
// worked examples (HF's formulas done by hand below), the anyres processor's tiles and token
// boxes, llava_next / mistral config parsing (defaults, round trip, bad input), and Mistral's
// sliding-window attention against a direct double-precision loop. The live Hugging Face
// comparison (tests/hf, hf_llava_next) checks the same pieces against transformers itself.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "core/common.h"
#include "core/io/config.h"
#include "core/io/image_next.h"
#include "core/model/attention.h"

using json = nlohmann::json;

namespace {

dl::LlavaConfig next_config() {
    json j = {{"model_type", "llava_next"}, {"text_config", {{"model_type", "llama"}}}};
    return dl::LlavaConfig::from_json(j, "config.json");
}

void expect_error(const json& j, const std::string& needle) {
    try {
        dl::LlavaConfig::from_json(j, "config.json");
        FAIL() << "no error for " << j.dump();
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(Next, BestResolutionWorkedExamples) {
    const auto pins = dl::default_grid_pinpoints();
    // 640x480: (672,672) scales by min(1.05, 1.4) = 1.05 -> 672x504 >= 307200 original pixels, the
    // others keep at most 448x336 = 150528.
    EXPECT_EQ(dl::select_best_resolution(480, 640, pins), (dl::Resolution{672, 672}));
    // 1000x100: (336,1008) keeps all 100000 pixels (scale 1.008); (336,672) only 672x67.
    EXPECT_EQ(dl::select_best_resolution(100, 1000, pins), (dl::Resolution{336, 1008}));
    // 336x336: (336,672), (672,336) and (672,672) all keep 112896 pixels; the first with the
    // least waste (112896 vs 338688) wins, and (672,336) only ties it.
    EXPECT_EQ(dl::select_best_resolution(336, 336, pins), (dl::Resolution{336, 672}));
    EXPECT_THROW(dl::select_best_resolution(336, 336, {}), dl::Error);
    EXPECT_THROW(dl::select_best_resolution(0, 10, pins), dl::Error);
}

TEST(Next, LayoutWorkedExamples) {
    const auto pins = dl::default_grid_pinpoints();
    // 1000x1000 -> 672x672, 48x48 features, nothing unpadded: 576 + 48 * 49 = 2928.
    dl::NextLayout a = dl::next_layout(1000, 1000, pins, 336, 14);
    EXPECT_EQ(a.tile_rows, 2);
    EXPECT_EQ(a.tile_cols, 2);
    EXPECT_EQ(a.num_tokens(), 576 + 48 * 49);
    // 640x480 -> 672x672; resized 672 x ceil(480 * 1.05) = 504, pasted at y = 84; unpad: new
    // height int(round(480 * 48 / 640)) = 36, padding (48 - 36) / 2 = 6: rows 6..42.
    dl::NextLayout b = dl::next_layout(480, 640, pins, 336, 14);
    EXPECT_EQ(b.resized_width, 672);
    EXPECT_EQ(b.resized_height, 504);
    EXPECT_EQ(b.paste_x, 0);
    EXPECT_EQ(b.paste_y, 84);
    EXPECT_EQ(b.row0, 6);
    EXPECT_EQ(b.row1, 42);
    EXPECT_EQ(b.cols(), 48);
    EXPECT_EQ(b.num_tokens(), 576 + 36 * 49);
    // 336x336 -> 336x672 (1 x 2 tiles): 24 x 48 features; new width 24, padding 12: cols 12..36.
    dl::NextLayout c = dl::next_layout(336, 336, pins, 336, 14);
    EXPECT_EQ(c.col0, 12);
    EXPECT_EQ(c.col1, 36);
    EXPECT_EQ(c.num_tokens(), 576 + 24 * 25);
    // 300x20 into 28-px tiles (1x3 of them, 4x12 features): new height int(round(0.8)) = 0,
    // padding 2 from each end: no tile row survives and the span is the base image alone (HF).
    std::vector<dl::Resolution> small;
    for (auto [r, k] : std::vector<std::pair<int, int>>{{1, 2}, {2, 1}, {2, 2}, {3, 1}, {1, 3}})
        small.push_back({28 * r, 28 * k});
    dl::NextLayout d = dl::next_layout(20, 300, small, 28, 7);
    EXPECT_EQ(d.rows(), 0);
    EXPECT_EQ(d.num_tokens(), 16);
    EXPECT_THROW(dl::next_layout(10, 10, pins, 336, 13), dl::Error);  // 336 % 13 != 0
}

TEST(Next, ProcessorTilesAndTokenBoxes) {
    dl::LlavaConfig c = next_config();
    dl::PreprocessorConfig pre;
    cv::Mat img(480, 640, CV_8UC3, cv::Scalar(200, 100, 50));
    dl::PreprocessedImage p = dl::preprocess_image_next(img, pre, c);
    ASSERT_EQ(p.pixel_values.sizes(), (std::vector<int64_t>{5, 3, 336, 336}));
    // tile (0,0): rows above y = 84 are the black padding, (0 - mean) / std; below, the colour
    auto at = [&](int t, int ch, int y, int x) { return p.pixel_values[t][ch][y][x].item<float>(); };
    for (int ch = 0; ch < 3; ++ch) {
        const float pad = float((0.0 - pre.image_mean[size_t(ch)]) / pre.image_std[size_t(ch)]);
        EXPECT_FLOAT_EQ(at(1, ch, 0, 0), pad);
        EXPECT_FLOAT_EQ(at(1, ch, 83, 10), pad);
        const double v = (ch == 0 ? 200 : ch == 1 ? 100 : 50) / 255.0;
        EXPECT_NEAR(at(1, ch, 84, 10), (v - pre.image_mean[size_t(ch)]) / pre.image_std[size_t(ch)], 1e-5);
        EXPECT_NEAR(at(0, ch, 0, 0), (v - pre.image_mean[size_t(ch)]) / pre.image_std[size_t(ch)], 1e-5);
    }
    const dl::ImageGeometry& g = p.geometry;
    ASSERT_EQ(g.num_tokens(), 576 + 36 * 49);
    EXPECT_EQ(g.mode, "anyres");
    // base token (0,0): the first 14 px of the 336 view = 14 * 640 / 336 x 14 * 480 / 336 pixels
    dl::Box b0 = g.patch_box_original(0);
    EXPECT_NEAR(b0.x1, 14.0 * 640 / 336, 1e-9);
    EXPECT_NEAR(b0.y1, 14.0 * 480 / 336, 1e-9);
    EXPECT_EQ(g.view_of(0), 0);
    // first tile token: feature row 6 = padded y 84..98 = original y 0..14/1.05
    dl::Box t0 = g.patch_box_original(576);
    EXPECT_EQ(g.view_of(576), 1);
    EXPECT_NEAR(t0.y0, 0.0, 1e-9);
    EXPECT_NEAR(t0.y1, 14.0 / 1.05, 1e-9);
    // each tile row ends with a newline token with no pixels
    int newlines = 0;
    double covered = 0;
    for (int i = 576; i < g.num_tokens(); ++i) {
        if (g.view_of(i) < 0) {
            ++newlines;
            dl::Box e = g.patch_box_original(i);
            EXPECT_EQ(e.x1 - e.x0, 0.0);
        } else {
            dl::Box e = g.patch_box_original(i);
            covered += (e.x1 - e.x0) * (e.y1 - e.y0);
        }
    }
    EXPECT_EQ(newlines, 36);
    EXPECT_EQ(g.view_of(576 + 48), -1);
    // the tile tokens tile the picture exactly: 36 rows of 14 / 1.05 px = 480 px
    EXPECT_NEAR(covered, 640.0 * 480.0, 1e-6);
}

TEST(Next, ConfigParsing) {
    dl::LlavaConfig c = next_config();
    EXPECT_TRUE(c.is_next());
    EXPECT_EQ(c.image_grid_pinpoints.size(), 5u);
    json m = {{"model_type", "llava_next"},
              {"image_grid_pinpoints", {{336, 672}, {672, 336}}},
              {"text_config", {{"model_type", "mistral"}, {"num_attention_heads", 32}}}};
    dl::LlavaConfig mc = dl::LlavaConfig::from_json(m, "config.json");
    EXPECT_EQ(mc.text.model_type, "mistral");
    EXPECT_EQ(mc.text.num_key_value_heads, 8);       // MistralConfig's default, not the head count
    EXPECT_EQ(mc.text.intermediate_size, 14336);
    EXPECT_EQ(mc.text.sliding_window, 4096);
    EXPECT_EQ(mc.image_grid_pinpoints.size(), 2u);
    m["text_config"]["sliding_window"] = nullptr;
    EXPECT_EQ(dl::LlavaConfig::from_json(m, "config.json").text.sliding_window, 0);
    // the JSON we write reads back the same
    m["text_config"]["sliding_window"] = 40;
    dl::LlavaConfig rt = dl::LlavaConfig::from_json(dl::LlavaConfig::from_json(m, "config.json").to_hf_json(), "x");
    EXPECT_EQ(rt.text.sliding_window, 40);
    EXPECT_EQ(rt.text.num_key_value_heads, 8);
    EXPECT_EQ(rt.model_type, "llava_next");
    EXPECT_EQ(rt.image_grid_pinpoints, mc.image_grid_pinpoints);
    // bad input names the key
    expect_error({{"model_type", "llava_onevision"}}, "model_type");
    expect_error({{"model_type", "llava_next"}, {"image_grid_pinpoints", {{336, 600}}}}, "image_grid_pinpoints[0]");
    expect_error({{"model_type", "llava_next"}, {"image_grid_pinpoints", json::array()}}, "image_grid_pinpoints");
    expect_error({{"model_type", "llava_next"}, {"image_grid_pinpoints", json::array({json::array({336})})}},
                 "image_grid_pinpoints[0]");
    expect_error({{"model_type", "llava_next"}, {"image_grid_pinpoints", json::array({json::array({"a", 336})})}},
                 "image_grid_pinpoints[0][0]");
    expect_error({{"text_config", {{"model_type", "mistral"}, {"sliding_window", -3}}}}, "sliding_window");
    expect_error({{"text_config", {{"model_type", "qwen2"}}}}, "text_config.model_type");
}

TEST(Next, SlidingWindowAttentionMatchesDirectLoop) {
    at::manual_seed(3);
    const int64_t H = 4, Hkv = 2, D = 8, Sk = 23;
    for (int64_t Sq : {int64_t(23), int64_t(5), int64_t(1)}) {
        for (int64_t W : {int64_t(1), int64_t(4), int64_t(9), int64_t(40)}) {
            at::Tensor q = at::randn({H, Sq, D}), k = at::randn({Hkv, Sk, D}), v = at::randn({Hkv, Sk, D});
            at::Tensor got = dl::attention_windowed(q, k, v, W);
            at::Tensor qd = q.to(at::kDouble), kd = k.to(at::kDouble), vd = v.to(at::kDouble);
            double worst = 0;
            for (int64_t h = 0; h < H; ++h) {
                const int64_t j = h / (H / Hkv);
                for (int64_t i = 0; i < Sq; ++i) {
                    const int64_t pos = Sk - Sq + i;  // the query's key index
                    std::vector<double> s;
                    std::vector<int64_t> keys;
                    for (int64_t t = 0; t < Sk; ++t)
                        if (t <= pos && t > pos - W) {  // HF: kv_idx > q_idx - window
                            keys.push_back(t);
                            s.push_back(qd[h][i].dot(kd[j][t]).item<double>() / std::sqrt(double(D)));
                        }
                    const double mx = *std::max_element(s.begin(), s.end());
                    double z = 0;
                    for (double& e : s) z += (e = std::exp(e - mx));
                    for (int64_t d = 0; d < D; ++d) {
                        double o = 0;
                        for (size_t u = 0; u < keys.size(); ++u) o += s[u] / z * vd[j][keys[u]][d].item<double>();
                        worst = std::max(worst, std::abs(o - got[h][i][d].item<double>()));
                    }
                }
            }
            EXPECT_LT(worst, 1e-5) << "Sq " << Sq << " window " << W;
        }
    }
    // a window as long as the cache is plain causal attention
    at::Tensor q = at::randn({H, Sk, D}), k = at::randn({Hkv, Sk, D}), v = at::randn({Hkv, Sk, D});
    EXPECT_TRUE(at::allclose(dl::attention_windowed(q, k, v, Sk), dl::attention(q, k, v, true), 1e-5, 1e-5));
    EXPECT_THROW(dl::attention_windowed(q, k, v, 0), dl::Error);
}
