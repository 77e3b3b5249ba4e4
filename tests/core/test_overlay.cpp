// Tests for core/overlay: kept patches untouched, pruned ones faded, crop margins untouched,
// pivot outlines, heatmaps following the scores, the legend strip, the composite and PNG output.
// Patch rectangles are computed here by hand from the crop arithmetic, not from the renderer.
#include <gtest/gtest.h>

#include <random>

#include <opencv2/imgcodecs.hpp>

#include "core/common.h"
#include "core/io/image.h"
#include "core/render/overlay.h"
#include "test_util.h"

namespace {

// 200x100 original; preprocess shortest_edge 56, crop 56, patch 14 -> a 4x4 grid. Resized to
// 112x56 (scale 0.56), crop left (112-56)//2 = 28 -> original x in [50,150); patches 25x25 px.
const int kW = 200, kH = 100;

dl::ImageGeometry wide_geometry() {
    dl::PreprocessorConfig cfg;
    cfg.shortest_edge = 56;
    cfg.crop_width = cfg.crop_height = 56;
    return dl::preprocess_image(cv::Mat(kH, kW, CV_8UC3, cv::Scalar(0, 0, 0)), cfg, "crop", 14).geometry;
}

cv::Rect hand_rect(int patch) { return cv::Rect(50 + 25 * (patch % 4), 25 * (patch / 4), 25, 25); }

dl::RgbImage textured_image() {
    dl::RgbImage img;
    img.width = kW;
    img.height = kH;
    std::mt19937 rng(7);
    for (int i = 0; i < kW * kH * 3; i++) img.pixels.push_back(uint8_t(120 + rng() % 136));  // never 40
    return img;
}

dl::RgbImage flat_image(uint8_t v) {
    dl::RgbImage img;
    img.width = kW;
    img.height = kH;
    img.pixels.assign(size_t(kW) * kH * 3, v);
    return img;
}

const uint8_t* px(const dl::RgbImage& img, int x, int y) { return &img.pixels[(size_t(y) * img.width + x) * 3]; }

bool same_pixel(const dl::RgbImage& a, const dl::RgbImage& b, int x, int y) {
    return std::equal(px(a, x, y), px(a, x, y) + 3, px(b, x, y));
}

dl::PruningResult dart_result() {
    dl::PruningResult p;
    p.method = "dart";
    p.layer = 2;
    p.budget = 4;
    p.kept_count = 4;
    p.num_image_tokens = 16;
    p.kept_image_indices = {0, 5, 10, 15};
    p.pivot_image_indices = {10, 5};
    p.pivots = {{10, "image", 0}, {5, "image", 1}, {20, "text", 2}};
    for (int i = 0; i < 16; i++) {
        p.dup_max.push_back(float(i) / 15.0f);
        p.key_l1.push_back(float(i % 2));
    }
    return p;
}

dl::OverlayOptions plain_options() {
    dl::OverlayOptions o;
    o.show_pivots = false;
    o.legend = false;
    o.mark_unseen = false;
    return o;
}

cv::Vec3d mean_rgb(const dl::RgbImage& img, cv::Rect r) {
    cv::Vec3d s(0, 0, 0);
    for (int y = r.y; y < r.y + r.height; y++)
        for (int x = r.x; x < r.x + r.width; x++)
            for (int c = 0; c < 3; c++) s[c] += px(img, x, y)[c];
    return s / double(r.area());
}

}  // namespace

TEST(Overlay, KeptUnchangedPrunedFadedMarginsUntouched) {
    const dl::RgbImage img = textured_image();
    const dl::ImageGeometry g = wide_geometry();
    ASSERT_EQ(g.rows * g.cols, 16);
    const dl::RgbImage out = dl::render_overlay(img, g, dart_result(), plain_options());
    ASSERT_EQ(out.width, kW);
    ASSERT_EQ(out.height, kH);
    const std::vector<int> kept = {0, 5, 10, 15};
    for (int i = 0; i < 16; i++) {
        const cv::Rect r = hand_rect(i);
        const bool is_kept = std::find(kept.begin(), kept.end(), i) != kept.end();
        for (int y = r.y; y < r.y + r.height; y++)
            for (int x = r.x; x < r.x + r.width; x++) {
                if (is_kept) {
                    ASSERT_TRUE(same_pixel(img, out, x, y)) << "kept patch " << i << " at " << x << "," << y;
                } else {
                    ASSERT_FALSE(same_pixel(img, out, x, y)) << "pruned patch " << i << " at " << x << "," << y;
                    // fade 0.3 toward grey 40
                    for (int c = 0; c < 3; c++)
                        ASSERT_NEAR(px(out, x, y)[c], 0.3 * px(img, x, y)[c] + 0.7 * 40, 1.0);
                }
            }
    }
    // The crop dropped x < 50 and x >= 150: nothing drawn there.
    for (int y = 0; y < kH; y++)
        for (int x : {0, 25, 49, 150, 175, 199}) ASSERT_TRUE(same_pixel(img, out, x, y)) << x << "," << y;
}

TEST(Overlay, UnseenMarginsMarkedWhenAsked) {
    const dl::RgbImage img = textured_image();
    dl::OverlayOptions o = plain_options();
    o.mark_unseen = true;
    const dl::RgbImage out = dl::render_overlay(img, wide_geometry(), dart_result(), o);
    // Every margin column the crop dropped is darkened (or hatched); the view itself is as before.
    for (int x : {0, 25, 49, 150, 175, 199}) {
        int changed = 0;
        for (int y = 0; y < kH; y++) changed += !same_pixel(img, out, x, y);
        EXPECT_GE(changed, kH * 95 / 100) << "column " << x;
    }
    const dl::RgbImage plain = dl::render_overlay(img, wide_geometry(), dart_result(), plain_options());
    for (int y = 0; y < kH; y++)
        for (int x = 50; x < 150; x++) ASSERT_TRUE(same_pixel(plain, out, x, y)) << x << "," << y;
}

TEST(Overlay, MethodNoneShowsEverything) {
    const dl::RgbImage img = textured_image();
    dl::PruningResult none;
    none.method = "none";
    none.num_image_tokens = 16;
    const dl::RgbImage out = dl::render_overlay(img, wide_geometry(), none, plain_options());
    EXPECT_EQ(out.pixels, img.pixels);
}

TEST(Overlay, PivotOutlines) {
    const dl::RgbImage img = flat_image(128);
    dl::OverlayOptions o = plain_options();
    o.show_pivots = true;
    const dl::RgbImage out = dl::render_overlay(img, wide_geometry(), dart_result(), o);
    auto magenta_count = [&](int patch) {
        const cv::Rect r = hand_rect(patch);
        int n = 0;
        for (int y = r.y; y < r.y + r.height; y++)
            for (int x = r.x; x < r.x + r.width; x++) {
                const uint8_t* p = px(out, x, y);
                n += p[0] == 255 && p[1] == 0 && p[2] == 255;
            }
        return n;
    };
    for (int i = 0; i < 16; i++) {
        if (i == 5 || i == 10) {
            EXPECT_GT(magenta_count(i), 4 * 20) << "pivot " << i << " has no outline";
            // The outline runs along the left edge of the patch.
            const cv::Rect r = hand_rect(i);
            const uint8_t* p = px(out, r.x + 1, r.y + 12);
            EXPECT_EQ(p[0], 255);
            EXPECT_EQ(p[1], 0);
            EXPECT_EQ(p[2], 255);
        } else {
            EXPECT_EQ(magenta_count(i), 0) << "patch " << i << " is not a pivot";
        }
    }
    // Pivots off: no magenta anywhere.
    const dl::RgbImage plain = dl::render_overlay(img, wide_geometry(), dart_result(), plain_options());
    for (size_t i = 0; i + 2 < plain.pixels.size(); i += 3)
        ASSERT_FALSE(plain.pixels[i] == 255 && plain.pixels[i + 1] == 0 && plain.pixels[i + 2] == 255);
}

TEST(Overlay, HeatmapFollowsScores) {
    const dl::RgbImage img = flat_image(128);
    dl::OverlayOptions o = plain_options();
    o.mode = "dup";  // dup_max = i / 15: viridis from dark purple (low) to yellow (high)
    const dl::RgbImage out = dl::render_overlay(img, wide_geometry(), dart_result(), o);
    const cv::Vec3d lo = mean_rgb(out, hand_rect(0)), hi = mean_rgb(out, hand_rect(15));
    EXPECT_GT(hi[1] - lo[1], 80.0) << "green rises along viridis";
    EXPECT_GT(lo[2] - hi[2], 10.0) << "blue falls along viridis";
    // Strictly ordered brightness along the scores (viridis luminance is monotonic).
    double prev = -1;
    for (int i = 0; i < 16; i++) {
        const cv::Vec3d m = mean_rgb(out, hand_rect(i));
        const double lum = 0.299 * m[0] + 0.587 * m[1] + 0.114 * m[2];
        EXPECT_GT(lum, prev) << "patch " << i;
        prev = lum;
    }
    // keynorm alternates 0/1: equal scores give equal colours.
    o.mode = "keynorm";
    const dl::RgbImage kn = dl::render_overlay(img, wide_geometry(), dart_result(), o);
    EXPECT_EQ(mean_rgb(kn, hand_rect(0)), mean_rgb(kn, hand_rect(2)));
    EXPECT_NE(mean_rgb(kn, hand_rect(0)), mean_rgb(kn, hand_rect(1)));
    // The heatmap stays inside the crop.
    for (int y = 0; y < kH; y++) ASSERT_TRUE(same_pixel(img, kn, 10, y));
    // fastv has no scores here: falls back to the kept view.
    o.mode = "fastv";
    const dl::RgbImage fb = dl::render_overlay(img, wide_geometry(), dart_result(), o);
    const dl::RgbImage kept = dl::render_overlay(img, wide_geometry(), dart_result(), plain_options());
    EXPECT_EQ(fb.pixels, kept.pixels);
    o.mode = "bogus";
    EXPECT_THROW(dl::render_overlay(img, wide_geometry(), dart_result(), o), dl::Error);
}

TEST(Overlay, LegendStripBelowPicture) {
    const dl::RgbImage img = textured_image();
    dl::OverlayOptions o;  // legend on, pivots on
    const dl::RgbImage out = dl::render_overlay(img, wide_geometry(), dart_result(), o);
    EXPECT_EQ(out.width, kW);
    EXPECT_EQ(out.height, kH + dl::overlay_legend_height(kW));
    // Kept, non-pivot patch 0 stays untouched in the picture rows.
    const cv::Rect r = hand_rect(0);
    for (int y = r.y; y < r.y + r.height; y++)
        for (int x = r.x; x < r.x + r.width; x++) ASSERT_TRUE(same_pixel(img, out, x, y));
}

TEST(Overlay, PadGeometryDrawsOnlyInsideThePicture) {
    // 100x200 (tall) padded to 200x200 at x=50; 4x4 grid of 50 px patches, columns 0 and 3 lie
    // wholly in the padding. Prune everything: the whole picture fades, nothing overflows.
    dl::PreprocessorConfig cfg;
    cfg.shortest_edge = 56;
    cfg.crop_width = cfg.crop_height = 56;
    dl::RgbImage img;
    img.width = 100;
    img.height = 200;
    img.pixels.assign(100 * 200 * 3, 200);
    const dl::ImageGeometry g = dl::preprocess_image(cv::Mat(200, 100, CV_8UC3), cfg, "pad", 14).geometry;
    dl::PruningResult p;
    p.method = "fastv";
    p.num_image_tokens = 16;
    const dl::RgbImage out = dl::render_overlay(img, g, p, plain_options());
    ASSERT_EQ(out.pixels.size(), img.pixels.size());
    for (size_t i = 0; i < out.pixels.size(); i++) ASSERT_NEAR(out.pixels[i], 0.3 * 200 + 0.7 * 40, 1.0);
}

TEST(Overlay, CompositeAndPng) {
    const dl::RgbImage img = textured_image();
    dl::MethodRun none, dart;
    none.config.method = "none";
    none.pruning.method = "none";
    none.pruning.num_image_tokens = 16;
    none.text = "A cat sitting on a mat, looking at the camera with great interest and some suspicion.";
    none.timing_ms.prefill = 120;
    dart.config.method = "dart";
    dart.config.keep = 4;
    dart.pruning = dart_result();
    dart.text = "A cat.";
    const dl::RgbImage comp = dl::render_composite(img, wide_geometry(), {none, dart}, "What is in the picture?", {});
    EXPECT_EQ(comp.width, 2 * 360 + 3 * 12);
    EXPECT_GT(comp.height, 360 / 2 + 100);
    EXPECT_EQ(comp.pixels.size(), size_t(comp.width) * comp.height * 3);
    EXPECT_THROW(dl::render_composite(img, wide_geometry(), {}, "q", {}), dl::Error);

    const std::string dir = dltest::scratch_dir("overlay_png");
    dl::save_png(comp, dir + "/comp.png");
    cv::Mat back = cv::imread(dir + "/comp.png", cv::IMREAD_COLOR);
    ASSERT_EQ(back.cols, comp.width);
    ASSERT_EQ(back.rows, comp.height);
    const cv::Vec3b p = back.at<cv::Vec3b>(7, 9);  // BGR
    EXPECT_EQ(p[2], px(comp, 9, 7)[0]);
    EXPECT_EQ(p[1], px(comp, 9, 7)[1]);
    EXPECT_EQ(p[0], px(comp, 9, 7)[2]);
    // load_image_for_display decodes it back identically.
    EXPECT_EQ(dl::load_image_for_display(dir + "/comp.png").pixels, comp.pixels);
    dl::RgbImage bad;
    bad.width = 3;
    bad.height = 3;
    EXPECT_THROW(dl::encode_png(bad), dl::Error);
}
