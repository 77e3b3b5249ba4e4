// Tests for core/image: decoding (formats, EXIF, errors), PIL-style bicubic resampling checked
// against hand-computed values and an independent per-pixel double-precision formula, CLIP
// normalisation, and the patch -> original-pixel geometry for crop and pad.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/common.h"
#include "core/io/image.h"
#include "test_util.h"

namespace {

// ---- independent reference for PIL's bicubic: direct formula, double, per output pixel ------

double cubic_a05(double x) {
    x = std::fabs(x);
    if (x < 1) return 1.5 * x * x * x - 2.5 * x * x + 1;
    if (x < 2) return -0.5 * x * x * x + 2.5 * x * x - 4 * x + 2;
    return 0;
}

// Weighted value of output sample `o` along an axis of length `in` resized to `out`, from
// samples get(j); weights over every input sample, normalised to sum to 1.
template <typename Get>
double axis_sample(int in, int out, int o, Get get) {
    const double scale = double(in) / out;
    const double fs = std::max(1.0, scale);
    const double center = (o + 0.5) * scale;
    double num = 0, den = 0;
    for (int j = 0; j < in; j++) {
        const double w = cubic_a05((j + 0.5 - center) / fs);
        num += w * get(j);
        den += w;
    }
    return num / den;
}

int round_clip(double v) { return std::min(255, std::max(0, int(std::floor(v + 0.5)))); }

// Reference: horizontal pass (rounded to uint8), then vertical pass, each skipped when that size
// is unchanged, evaluated independently for every output pixel.
cv::Mat reference_resize(const cv::Mat& src, int ow, int oh) {
    const int cn = src.channels();
    cv::Mat out(oh, ow, src.type());
    auto horiz = [&](int row, int x, int c) -> double {
        if (ow == src.cols) return src.ptr<uint8_t>(row)[x * cn + c];
        return round_clip(axis_sample(src.cols, ow, x, [&](int j) { return double(src.ptr<uint8_t>(row)[j * cn + c]); }));
    };
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int c = 0; c < cn; c++) {
                double v;
                if (oh == src.rows) v = horiz(y, x, c);
                else v = axis_sample(src.rows, oh, y, [&](int j) { return horiz(j, x, c); });
                out.ptr<uint8_t>(y)[x * cn + c] = uint8_t(round_clip(v));
            }
    return out;
}

cv::Mat random_image(int w, int h, int cn, unsigned seed) {
    std::mt19937 rng(seed);
    cv::Mat m(h, w, CV_8UC(cn));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * cn; x++) m.ptr<uint8_t>(y)[x] = uint8_t(rng() & 255);
    return m;
}

void expect_close_to_reference(const cv::Mat& src, int ow, int oh) {
    const cv::Mat got = dl::resize_bicubic_pil(src, ow, oh);
    const cv::Mat ref = reference_resize(src, ow, oh);
    ASSERT_EQ(got.cols, ow);
    ASSERT_EQ(got.rows, oh);
    ASSERT_EQ(got.type(), src.type());
    int64_t total = 0, exact = 0;
    int max_diff = 0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow * src.channels(); x++) {
            const int d = std::abs(int(got.ptr<uint8_t>(y)[x]) - int(ref.ptr<uint8_t>(y)[x]));
            max_diff = std::max(max_diff, d);
            exact += d == 0;
            total++;
        }
    // Fixed-point taps vs exact doubles: only values within ~1e-6 of a .5 boundary may differ.
    EXPECT_LE(max_diff, 1) << src.cols << "x" << src.rows << " -> " << ow << "x" << oh;
    EXPECT_GE(double(exact) / double(total), 0.995) << src.cols << "x" << src.rows << " -> " << ow << "x" << oh;
}

dl::PreprocessorConfig clip_cfg() { return dl::PreprocessorConfig{}; }  // 336 / 336, CLIP mean/std

float normalised(int value, int c) {
    const dl::PreprocessorConfig cfg;
    const float v = float(double(value) * (1.0 / 255.0));
    return (v - float(cfg.image_mean[c])) / float(cfg.image_std[c]);
}

float pix(const at::Tensor& t, int c, int y, int x) { return t[0][c][y][x].item<float>(); }

void expect_error_naming(const std::string& path, const std::string& what_part = "") {
    try {
        dl::load_image_rgb8(path);
        ADD_FAILURE() << "no error for " << path;
    } catch (const dl::Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(path), std::string::npos) << msg;
        if (!what_part.empty()) EXPECT_NE(msg.find(what_part), std::string::npos) << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << "one-line message: " << msg;
    }
}

std::string encode(const std::string& ext, const cv::Mat& m) {
    std::vector<uchar> buf;
    EXPECT_TRUE(cv::imencode(ext, m, buf));
    return std::string(buf.begin(), buf.end());
}

}  // namespace

// ---- bicubic ---------------------------------------------------------------------------------

TEST(Bicubic, HandComputedDownscale) {
    // 4 -> 2: scale 2, support 4; out0 taps at x=0..3 are f(-.25), f(.25), f(.75), f(1.25) with
    // f(.25)=.8671875, f(.75)=.2265625, f(1.25)=-.0703125, sum 1.890625:
    // (100*.8671875 + 200*.2265625 - 255*.0703125) / 1.890625 = 60.35 -> 60, and mirrored
    // (100*.2265625 + 200*.8671875 + 255*.8671875) / 1.890625 = 220.68 -> 221.
    cv::Mat src(1, 4, CV_8UC1);
    src.at<uint8_t>(0, 0) = 0;
    src.at<uint8_t>(0, 1) = 100;
    src.at<uint8_t>(0, 2) = 200;
    src.at<uint8_t>(0, 3) = 255;
    cv::Mat out = dl::resize_bicubic_pil(src, 2, 1);
    EXPECT_EQ(out.at<uint8_t>(0, 0), 60);
    EXPECT_EQ(out.at<uint8_t>(0, 1), 221);
}

TEST(Bicubic, HandComputedUpscaleWithClipping) {
    // 2 -> 4 of [0,255]: weights (.8671875,-.0703125)/.796875 -> -22.5 clips to 0;
    // (.8671875,.2265625)/1.09375 -> 52.8 -> 53; mirrored 202.2 -> 202; 277.5 clips to 255.
    cv::Mat src(2, 1, CV_8UC1);  // vertical this time
    src.at<uint8_t>(0, 0) = 0;
    src.at<uint8_t>(1, 0) = 255;
    cv::Mat out = dl::resize_bicubic_pil(src, 1, 4);
    ASSERT_EQ(out.rows, 4);
    EXPECT_EQ(out.at<uint8_t>(0, 0), 0);
    EXPECT_EQ(out.at<uint8_t>(1, 0), 53);
    EXPECT_EQ(out.at<uint8_t>(2, 0), 202);
    EXPECT_EQ(out.at<uint8_t>(3, 0), 255);
}

TEST(Bicubic, MatchesIndependentFormula) {
    expect_close_to_reference(random_image(37, 23, 3, 1), 17, 29);   // down x, up y
    expect_close_to_reference(random_image(50, 40, 3, 2), 13, 11);   // strong downscale
    expect_close_to_reference(random_image(9, 12, 3, 3), 31, 40);    // upscale
    expect_close_to_reference(random_image(30, 20, 1, 4), 30, 7);    // vertical only
    expect_close_to_reference(random_image(64, 48, 3, 5), 45, 48);   // horizontal only
}

TEST(Bicubic, ConstantStaysConstantAndDiffersFromOpenCv) {
    cv::Mat flat(40, 60, CV_8UC3, cv::Scalar(255, 0, 37));
    cv::Mat out = dl::resize_bicubic_pil(flat, 23, 17);
    for (int y = 0; y < out.rows; y++)
        for (int x = 0; x < out.cols; x++) {
            const cv::Vec3b p = out.at<cv::Vec3b>(y, x);
            ASSERT_EQ(p[0], 255);
            ASSERT_EQ(p[1], 0);
            ASSERT_EQ(p[2], 37);
        }
    // INTER_CUBIC (a=-0.75, no antialiasing) is not what PIL does: a downscale must differ.
    cv::Mat noise = random_image(64, 64, 3, 9), cv_out;
    cv::resize(noise, cv_out, cv::Size(20, 20), 0, 0, cv::INTER_CUBIC);
    EXPECT_GT(cv::norm(cv_out, dl::resize_bicubic_pil(noise, 20, 20), cv::NORM_L1), 1000.0);
}

// ---- preprocessing -------------------------------------------------------------------------

TEST(Preprocess, ConstantImageNormalisesExactly) {
    for (cv::Size size : {cv::Size(200, 120), cv::Size(120, 200), cv::Size(336, 336), cv::Size(50, 50)}) {
        const std::string mode = std::to_string(size.width) + "x" + std::to_string(size.height);
        cv::Mat white(size, CV_8UC3, cv::Scalar(255, 255, 255));
        dl::PreprocessedImage p = dl::preprocess_image(white, clip_cfg(), "crop", 14);
        ASSERT_EQ(p.pixel_values.sizes(), (at::IntArrayRef{1, 3, 336, 336})) << mode;
        EXPECT_EQ(p.pixel_values.scalar_type(), at::kFloat);
        for (int c = 0; c < 3; c++) {
            const dl::PreprocessorConfig cfg;
            const float expected = (1.0f - float(cfg.image_mean[c])) / float(cfg.image_std[c]);
            at::Tensor ch = p.pixel_values[0][c];
            EXPECT_EQ(ch.min().item<float>(), expected) << mode << " channel " << c;
            EXPECT_EQ(ch.max().item<float>(), expected) << mode << " channel " << c;
        }
    }
    // Channel order: an RGB (10, 128, 250) image yields per-channel values of R, G, B.
    cv::Mat rgb(50, 50, CV_8UC3, cv::Scalar(10, 128, 250));
    dl::PreprocessedImage p = dl::preprocess_image(rgb, clip_cfg(), "crop", 14);
    EXPECT_EQ(pix(p.pixel_values, 0, 100, 100), normalised(10, 0));
    EXPECT_EQ(pix(p.pixel_values, 1, 100, 100), normalised(128, 1));
    EXPECT_EQ(pix(p.pixel_values, 2, 100, 100), normalised(250, 2));
}

TEST(Preprocess, CropGeometryHandComputed) {
    // 600x300: short 300 -> 336, long int(336*600/300) = 672; crop left (672-336)//2 = 168.
    cv::Mat img(300, 600, CV_8UC3, cv::Scalar(90, 90, 90));
    dl::PreprocessedImage p = dl::preprocess_image(img, clip_cfg(), "crop", 14);
    const dl::ImageGeometry& g = p.geometry;
    EXPECT_EQ(g.rows, 24);
    EXPECT_EQ(g.cols, 24);
    EXPECT_EQ(g.patch_size, 14);
    EXPECT_EQ(g.image_size, 336);
    EXPECT_EQ(g.original_width, 600);
    EXPECT_EQ(g.original_height, 300);
    EXPECT_EQ(g.mode, "crop");
    EXPECT_DOUBLE_EQ(g.scale_x, 1.12);
    EXPECT_DOUBLE_EQ(g.scale_y, 1.12);
    EXPECT_DOUBLE_EQ(g.offset_x, -168);
    EXPECT_DOUBLE_EQ(g.offset_y, 0);
    dl::Box b0 = g.patch_box_original(0);
    EXPECT_NEAR(b0.x0, 150.0, 1e-9);
    EXPECT_NEAR(b0.x1, 162.5, 1e-9);
    EXPECT_NEAR(b0.y1, 12.5, 1e-9);
    dl::Box blast = g.patch_box_original(24 * 24 - 1);
    EXPECT_NEAR(blast.x1, 450.0, 1e-9);
    EXPECT_NEAR(blast.y1, 300.0, 1e-9);

    // pad: 600x300 -> 600x600 with the picture at y=150; 600 -> 336: scale .56, offset 84.
    dl::PreprocessedImage q = dl::preprocess_image(img, clip_cfg(), "pad", 14);
    EXPECT_DOUBLE_EQ(q.geometry.scale_x, 0.56);
    EXPECT_DOUBLE_EQ(q.geometry.offset_x, 0);
    EXPECT_NEAR(q.geometry.offset_y, 84.0, 1e-9);
    dl::Box pad0 = q.geometry.patch_box_original(0);  // entirely in the padding: clips to empty
    EXPECT_EQ(pad0.y0, pad0.y1);
    // The top rows are the mean colour tuple(int(x*255) for x in mean) = (122, 116, 104).
    for (int c = 0; c < 3; c++) {
        const int fill[3] = {122, 116, 104};
        EXPECT_EQ(pix(q.pixel_values, c, 0, 0), normalised(fill[c], c));
        EXPECT_EQ(pix(q.pixel_values, c, 20, 300), normalised(fill[c], c));
        EXPECT_EQ(pix(q.pixel_values, c, 168, 168), normalised(90, c));
    }
}

// A red marker in the original must land in exactly the patches whose original boxes cover it.
static void check_marker_round_trip(int w, int h, const std::string& mode, cv::Rect marker) {
    cv::Mat img(h, w, CV_8UC3, cv::Scalar(40, 160, 40));
    cv::rectangle(img, marker, cv::Scalar(250, 10, 10), cv::FILLED);
    dl::PreprocessedImage p = dl::preprocess_image(img, clip_cfg(), mode, 14);
    const dl::ImageGeometry& g = p.geometry;
    const dl::PreprocessorConfig cfg;
    // redness R - G in 0..255 units (marker 240, background -120, pad fill 6)
    auto channel255 = [&](int c) {
        return (p.pixel_values[0][c] * float(cfg.image_std[c]) + float(cfg.image_mean[c])) * 255.0f;
    };
    at::Tensor red = channel255(0) - channel255(1);
    int red_patches = 0;
    for (int i = 0; i < g.rows * g.cols; i++) {
        const int r = i / g.cols, c = i % g.cols;
        const float mean_red = red.slice(0, r * 14, r * 14 + 14).slice(1, c * 14, c * 14 + 14).mean().item<float>();
        const dl::Box b = g.patch_box_original(i);
        // overlap of the patch's original box with the marker, in original pixels
        const double ox = std::max(0.0, std::min(b.x1, double(marker.x + marker.width)) - std::max(b.x0, double(marker.x)));
        const double oy = std::max(0.0, std::min(b.y1, double(marker.y + marker.height)) - std::max(b.y0, double(marker.y)));
        const double area = (b.x1 - b.x0) * (b.y1 - b.y0);
        if (mean_red > 100) {
            red_patches++;
            EXPECT_GT(ox * oy, 0.0) << mode << " " << w << "x" << h << ": red patch " << i << " maps outside the marker";
        }
        if (area > 0 && ox * oy >= 0.9 * area)
            EXPECT_GT(mean_red, 200) << mode << " " << w << "x" << h << ": patch " << i << " covers the marker but is not red";
    }
    EXPECT_GT(red_patches, 0) << mode << " " << w << "x" << h;
}

TEST(Preprocess, GeometryRoundTrip) {
    check_marker_round_trip(640, 320, "crop", cv::Rect(400, 100, 60, 50));   // wide
    check_marker_round_trip(300, 700, "crop", cv::Rect(50, 420, 90, 70));    // tall
    check_marker_round_trip(640, 320, "pad", cv::Rect(500, 200, 80, 80));    // wide, padded
    check_marker_round_trip(280, 560, "pad", cv::Rect(30, 40, 70, 60));      // tall, padded
    // A wide crop drops the sides: the leftmost original columns belong to no patch.
    cv::Mat img(320, 640, CV_8UC3, cv::Scalar(0, 0, 0));
    dl::ImageGeometry g = dl::preprocess_image(img, clip_cfg(), "crop", 14).geometry;
    double min_x = 1e9, max_x = -1;
    for (int i = 0; i < g.rows * g.cols; i++) {
        min_x = std::min(min_x, g.patch_box_original(i).x0);
        max_x = std::max(max_x, g.patch_box_original(i).x1);
    }
    EXPECT_NEAR(min_x, 160.0, 1e-9);
    EXPECT_NEAR(max_x, 480.0, 1e-9);
}

TEST(Preprocess, SmallCropPadsWithZeros) {
    dl::PreprocessorConfig cfg;
    cfg.shortest_edge = 28;
    cfg.crop_width = cfg.crop_height = 56;  // resized 28x28 sits at (14,14) with zeros around
    cv::Mat img(10, 10, CV_8UC3, cv::Scalar(255, 255, 255));
    dl::PreprocessedImage p = dl::preprocess_image(img, cfg, "crop", 14);
    ASSERT_EQ(p.pixel_values.size(3), 56);
    EXPECT_EQ(pix(p.pixel_values, 0, 0, 0), normalised(0, 0));
    EXPECT_EQ(pix(p.pixel_values, 0, 20, 20), normalised(255, 0));
    EXPECT_DOUBLE_EQ(p.geometry.offset_x, 14.0);
    EXPECT_DOUBLE_EQ(p.geometry.scale_x, 2.8);
}

TEST(Preprocess, RejectsBadInput) {
    EXPECT_THROW(dl::preprocess_image(cv::Mat(), clip_cfg(), "crop", 14), dl::Error);
    cv::Mat img(20, 20, CV_8UC3);
    EXPECT_THROW(dl::preprocess_image(img, clip_cfg(), "stretch", 14), dl::Error);
    EXPECT_THROW(dl::preprocess_image(img, clip_cfg(), "crop", 0), dl::Error);
}

// ---- decoding ------------------------------------------------------------------------------

TEST(Decode, ExifOrientation6IsRotated) {
    // 40x20 picture, quadrants TL red, TR green, BL blue, BR white (RGB); written as BGR.
    cv::Mat rgb(20, 40, CV_8UC3);
    rgb(cv::Rect(0, 0, 20, 10)).setTo(cv::Scalar(255, 0, 0));
    rgb(cv::Rect(20, 0, 20, 10)).setTo(cv::Scalar(0, 255, 0));
    rgb(cv::Rect(0, 10, 20, 10)).setTo(cv::Scalar(0, 0, 255));
    rgb(cv::Rect(20, 10, 20, 10)).setTo(cv::Scalar(255, 255, 255));
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    std::string jpg = encode(".jpg", bgr);
    ASSERT_EQ((unsigned char)jpg[2], 0xFF);
    ASSERT_EQ((unsigned char)jpg[3], 0xE0);  // JFIF APP0 first; insert our APP1 after it
    const size_t app0_end = 4 + ((size_t((unsigned char)jpg[4]) << 8) | (unsigned char)jpg[5]);
    // APP1: "Exif\0\0", little-endian TIFF header, IFD0 with one entry: Orientation(0x0112)
    // SHORT count 1 value 6 ("rotate 90 CW to display").
    const unsigned char app1[] = {0xFF, 0xE1, 0x00, 34, 'E', 'x', 'i', 'f', 0, 0,
                                  'I', 'I', 0x2A, 0x00, 0x08, 0x00, 0x00, 0x00,
                                  0x01, 0x00,
                                  0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x00};
    std::string rotated = jpg.substr(0, app0_end) + std::string((const char*)app1, sizeof(app1)) + jpg.substr(app0_end);
    const std::string dir = dltest::scratch_dir("image_exif");
    dltest::write_file(dir + "/orient6.jpg", rotated);
    dltest::write_file(dir + "/plain.jpg", jpg);

    cv::Mat plain = dl::load_image_rgb8(dir + "/plain.jpg");
    EXPECT_EQ(plain.cols, 40);
    EXPECT_EQ(plain.rows, 20);
    cv::Mat r = dl::load_image_rgb8(dir + "/orient6.jpg");
    ASSERT_EQ(r.cols, 20);
    ASSERT_EQ(r.rows, 40);
    // Rotated clockwise: new TL = old BL (blue), TR = old TL (red), BL = old BR (white),
    // BR = old TR (green).
    auto near = [](cv::Vec3b p, int R, int G, int B) {
        return std::abs(p[0] - R) < 40 && std::abs(p[1] - G) < 40 && std::abs(p[2] - B) < 40;
    };
    EXPECT_TRUE(near(r.at<cv::Vec3b>(5, 5), 0, 0, 255)) << r.at<cv::Vec3b>(5, 5);
    EXPECT_TRUE(near(r.at<cv::Vec3b>(5, 15), 255, 0, 0)) << r.at<cv::Vec3b>(5, 15);
    EXPECT_TRUE(near(r.at<cv::Vec3b>(35, 5), 255, 255, 255)) << r.at<cv::Vec3b>(35, 5);
    EXPECT_TRUE(near(r.at<cv::Vec3b>(35, 15), 0, 255, 0)) << r.at<cv::Vec3b>(35, 15);
}

TEST(Decode, SixteenBitGrayAndRgba) {
    const std::string dir = dltest::scratch_dir("image_formats");
    // 16-bit RGB: high byte kept (0xFF00 -> 255, where /257 would give 254).
    cv::Mat c16(3, 4, CV_16UC3, cv::Scalar(0x1000, 0x80FF, 0xFF00));  // B, G, R
    ASSERT_TRUE(cv::imwrite(dir + "/c16.png", c16));
    cv::Mat a = dl::load_image_rgb8(dir + "/c16.png");
    ASSERT_EQ(a.type(), CV_8UC3);
    EXPECT_EQ(a.at<cv::Vec3b>(1, 1), cv::Vec3b(255, 128, 16));

    cv::Mat g16(5, 6, CV_16UC1, cv::Scalar(0xAB00));
    ASSERT_TRUE(cv::imwrite(dir + "/g16.png", g16));
    cv::Mat b = dl::load_image_rgb8(dir + "/g16.png");
    ASSERT_EQ(b.cols, 6);
    EXPECT_EQ(b.at<cv::Vec3b>(2, 2), cv::Vec3b(0xAB, 0xAB, 0xAB));

    cv::Mat g8(5, 6, CV_8UC1, cv::Scalar(77));
    ASSERT_TRUE(cv::imwrite(dir + "/g8.png", g8));
    EXPECT_EQ(dl::load_image_rgb8(dir + "/g8.png").at<cv::Vec3b>(4, 5), cv::Vec3b(77, 77, 77));

    // RGBA with alpha 0: the colour is kept (PIL's convert("RGB") drops alpha, no compositing).
    cv::Mat rgba(4, 4, CV_8UC4, cv::Scalar(30, 20, 10, 0));  // B G R A
    rgba.at<cv::Vec4b>(0, 0) = cv::Vec4b(200, 100, 50, 255);
    ASSERT_TRUE(cv::imwrite(dir + "/rgba.png", rgba));
    cv::Mat c = dl::load_image_rgb8(dir + "/rgba.png");
    ASSERT_EQ(c.type(), CV_8UC3);
    EXPECT_EQ(c.at<cv::Vec3b>(2, 2), cv::Vec3b(10, 20, 30));
    EXPECT_EQ(c.at<cv::Vec3b>(0, 0), cv::Vec3b(50, 100, 200));

    // 8-bit RGB PNG round trip keeps RGB order.
    cv::Mat bgr(2, 2, CV_8UC3, cv::Scalar(1, 2, 3));
    ASSERT_TRUE(cv::imwrite(dir + "/rgb.png", bgr));
    EXPECT_EQ(dl::load_image_rgb8(dir + "/rgb.png").at<cv::Vec3b>(1, 1), cv::Vec3b(3, 2, 1));
}

TEST(Decode, ErrorsNameTheFile) {
    const std::string dir = dltest::scratch_dir("image_errors");
    expect_error_naming(dir + "/missing.png");
    dltest::write_file(dir + "/empty.png", "");
    expect_error_naming(dir + "/empty.png", "0 bytes");
    dltest::write_file(dir + "/text.png", "this is not an image, just some text\n");
    expect_error_naming(dir + "/text.png");
    expect_error_naming(dir);  // a directory
    // Truncated PNG: the first half of a real one.
    cv::Mat m(64, 64, CV_8UC3, cv::Scalar(1, 2, 3));
    cv::randu(m, 0, 255);
    const std::string png = encode(".png", m);
    dltest::write_file(dir + "/truncated.png", png.substr(0, png.size() / 2));
    expect_error_naming(dir + "/truncated.png");
    // A PNG header claiming 100000 x 100000 pixels is refused before decoding.
    std::string huge = png.substr(0, 33);
    const unsigned char dims[8] = {0x00, 0x01, 0x86, 0xA0, 0x00, 0x01, 0x86, 0xA0};
    huge.replace(16, 8, std::string((const char*)dims, 8));
    dltest::write_file(dir + "/huge.png", huge + png.substr(33));
    expect_error_naming(dir + "/huge.png", "megapixel");
}
