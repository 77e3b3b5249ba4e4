// LLaVA-NeXT anyres processing and span layout (see image_next.h).
#include "core/io/image_next.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/common.h"

namespace dl {

Resolution select_best_resolution(int height, int width, const std::vector<Resolution>& pinpoints) {
    if (pinpoints.empty()) throw Error("image_grid_pinpoints is empty");
    if (height <= 0 || width <= 0) throw Error(str_cat("select_best_resolution: bad image size ", width, "x", height));
    Resolution best;
    int64_t max_effective = 0;
    int64_t min_wasted = std::numeric_limits<int64_t>::max();
    for (const Resolution& r : pinpoints) {
        const double scale = std::min(double(r.width) / width, double(r.height) / height);
        const int64_t dw = int64_t(double(width) * scale), dh = int64_t(double(height) * scale);
        const int64_t effective = std::min(dw * dh, int64_t(width) * height);
        const int64_t wasted = int64_t(r.width) * r.height - effective;
        if (effective > max_effective || (effective == max_effective && wasted < min_wasted)) {
            max_effective = effective;
            min_wasted = wasted;
            best = r;
        }
    }
    if (best.height == 0) best = pinpoints.front();  // only when every effective size is 0
    return best;
}

namespace {

// Python's int(round(x, 7)) for x >= 0.
int py_int_round7(double x) { return int(std::nearbyint(x * 1e7) / 1e7); }

}  // namespace

NextLayout next_layout(int height, int width, const std::vector<Resolution>& pinpoints, int tile, int patch) {
    if (tile <= 0 || patch <= 0 || tile % patch != 0)
        throw Error(str_cat("LLaVA-NeXT layout: vision image_size ", tile, " is not a multiple of patch_size ", patch));
    NextLayout L;
    L.best = select_best_resolution(height, width, pinpoints);
    L.tile = tile;
    L.grid = tile / patch;
    L.tile_rows = L.best.height / tile;
    L.tile_cols = L.best.width / tile;
    if (L.tile_rows <= 0 || L.tile_cols <= 0)
        throw Error(str_cat("image_grid_pinpoints: ", L.best.height, "x", L.best.width,
                            " is smaller than one tile of ", tile));
    // get_patch_output_size: the side with the smaller scale fits exactly, the other is ceil-ed
    const double sw = double(L.best.width) / width, sh = double(L.best.height) / height;
    if (sw < sh) {
        L.resized_width = L.best.width;
        L.resized_height = std::min(int(std::ceil(double(height) * sw)), L.best.height);
    } else {
        L.resized_height = L.best.height;
        L.resized_width = std::min(int(std::ceil(double(width) * sh)), L.best.width);
    }
    L.paste_x = (L.best.width - L.resized_width) / 2;
    L.paste_y = (L.best.height - L.resized_height) / 2;
    // unpad_image on the (tile_rows * grid) x (tile_cols * grid) feature map
    L.feature_rows = L.tile_rows * L.grid;
    L.feature_cols = L.tile_cols * L.grid;
    const double original_aspect = double(width) / height;
    const double current_aspect = double(L.feature_cols) / L.feature_rows;
    L.row0 = 0, L.row1 = L.feature_rows, L.col0 = 0, L.col1 = L.feature_cols;
    if (original_aspect > current_aspect) {
        const int new_height = py_int_round7(double(height) * (double(L.feature_cols) / width));
        const int padding = (L.feature_rows - new_height) / 2;
        L.row0 = padding;
        L.row1 = L.feature_rows - padding;
    } else {
        const int new_width = py_int_round7(double(width) * (double(L.feature_rows) / height));
        const int padding = (L.feature_cols - new_width) / 2;
        L.col0 = padding;
        L.col1 = L.feature_cols - padding;
    }
    // An extreme aspect ratio can leave nothing after unpadding (e.g. 300x20 into 1x3 tiles of 28):
    // HF then packs the base image alone, and so do we.
    L.row1 = std::max(L.row1, L.row0);
    L.col1 = std::max(L.col1, L.col0);
    return L;
}

int next_image_token_count(const LlavaConfig& config, int height, int width) {
    return next_layout(height, width, config.image_grid_pinpoints, config.vision.image_size, config.vision.patch_size)
        .num_tokens();
}

PreprocessedImage preprocess_image_next(const cv::Mat& rgb8, const PreprocessorConfig& cfg, const LlavaConfig& model) {
    if (rgb8.empty() || rgb8.type() != CV_8UC3)
        throw Error("preprocess_image_next: image must be a non-empty CV_8UC3 RGB matrix");
    if (!model.is_next()) throw Error("preprocess_image_next: the model is not LLaVA-NeXT (config.json model_type)");
    if (model.vision_feature_select_strategy != "default")
        throw Error(str_cat("config.json: vision_feature_select_strategy \"", model.vision_feature_select_strategy,
                            "\" with LLaVA-NeXT: only \"default\" packs (HF's pack_image_features needs grid^2 features "
                            "per tile)"));
    const int T = model.vision.image_size, P = model.vision.patch_size;
    if (cfg.next && !(cfg.image_grid_pinpoints == model.image_grid_pinpoints))
        throw Error("preprocessor_config.json: image_grid_pinpoints differ from config.json's (the processor would "
                    "make a different number of image tokens than the model packs)");
    if (cfg.shortest_edge != T || cfg.crop_height != T || cfg.crop_width != T)
        throw Error(str_cat("preprocessor_config.json: size ", cfg.shortest_edge, " / crop ", cfg.crop_height, "x",
                            cfg.crop_width, " must equal the vision image_size ", T, " for LLaVA-NeXT tiles"));
    if (cfg.image_mean.size() != 3 || cfg.image_std.size() != 3)
        throw Error("preprocessor_config: image_mean and image_std need 3 values");
    const int H = rgb8.rows, W = rgb8.cols;
    const NextLayout L = next_layout(H, W, model.image_grid_pinpoints, T, P);

    // the picture resized into the best resolution and pasted on black
    cv::Mat padded(L.best.height, L.best.width, CV_8UC3, cv::Scalar(0, 0, 0));
    cv::Mat resized = (L.resized_width == W && L.resized_height == H) ? rgb8
                                                                      : resize_bicubic_pil(rgb8, L.resized_width, L.resized_height);
    resized.copyTo(padded(cv::Rect(L.paste_x, L.paste_y, L.resized_width, L.resized_height)));
    cv::Mat base = (W == T && H == T) ? rgb8 : resize_bicubic_pil(rgb8, T, T);

    const int n = 1 + L.num_tiles();
    PreprocessedImage r;
    r.pixel_values = at::empty({n, 3, T, T}, at::TensorOptions().dtype(at::kFloat));
    float* out = r.pixel_values.data_ptr<float>();
    const size_t per = size_t(3) * T * T;
    normalize_into(base, cfg, out);
    for (int i = 0; i < L.tile_rows; ++i)
        for (int j = 0; j < L.tile_cols; ++j) {
            cv::Mat t = padded(cv::Rect(j * T, i * T, T, T)).clone();
            normalize_into(t, cfg, out + per * size_t(1 + i * L.tile_cols + j));
        }

    ImageGeometry& g = r.geometry;
    g.mode = "anyres";
    g.patch_size = P;
    g.image_size = T;
    g.rows = g.cols = L.grid;
    g.original_width = W;
    g.original_height = H;
    g.scale_x = double(T) / W;  // the base view: a plain resize to T x T
    g.scale_y = double(T) / H;
    g.tile_rows = L.tile_rows;
    g.tile_cols = L.tile_cols;
    g.best_width = L.best.width;
    g.best_height = L.best.height;
    g.resized_width = L.resized_width;
    g.resized_height = L.resized_height;
    g.paste_x = L.paste_x;
    g.paste_y = L.paste_y;
    auto clip = [](double v, int hi) { return std::clamp(v, 0.0, double(hi)); };
    g.tokens.reserve(size_t(L.num_tokens()));
    for (int rr = 0; rr < L.grid; ++rr)
        for (int cc = 0; cc < L.grid; ++cc) {
            TokenPlace t;
            t.view = 0, t.row = rr, t.col = cc;
            t.box = {clip(double(cc) * P / g.scale_x, W), clip(double(rr) * P / g.scale_y, H),
                     clip(double(cc + 1) * P / g.scale_x, W), clip(double(rr + 1) * P / g.scale_y, H)};
            g.tokens.push_back(t);
        }
    const double kx = double(W) / L.resized_width, ky = double(H) / L.resized_height;
    for (int rr = L.row0; rr < L.row1; ++rr) {
        for (int cc = L.col0; cc < L.col1; ++cc) {
            TokenPlace t;
            t.view = 1, t.row = rr, t.col = cc;
            t.box = {clip((double(cc) * P - L.paste_x) * kx, W), clip((double(rr) * P - L.paste_y) * ky, H),
                     clip((double(cc + 1) * P - L.paste_x) * kx, W), clip((double(rr + 1) * P - L.paste_y) * ky, H)};
            g.tokens.push_back(t);
        }
        TokenPlace nl;
        nl.view = -1, nl.row = rr, nl.col = L.col1;
        g.tokens.push_back(nl);
    }
    return r;
}

}  // namespace dl
