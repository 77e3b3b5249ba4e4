// Overlay and composite rendering with OpenCV drawing primitives (Hershey fonts, ASCII text).
//
// All drawing happens on an RGB CV_8UC3 view of the picture (colours below are RGB). Each image
// token covers the pixels whose centres fall inside its patch_box_original, so neighbouring
// patches tile the model's view without gaps or overlaps.
#include "core/render/overlay.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/common.h"
#include "core/render/export.h"
#include "core/io/image.h"

namespace dl {

// --- conversions ------------------------------------------------------------------------------

static cv::Mat to_mat(const RgbImage& img) {
    if (img.width <= 0 || img.height <= 0 || img.pixels.size() != size_t(img.width) * img.height * 3)
        throw Error(str_cat("RgbImage: ", img.width, "x", img.height, " with ", img.pixels.size(),
                            " bytes is not a valid RGB8 image"));
    cv::Mat m(img.height, img.width, CV_8UC3);
    std::copy(img.pixels.begin(), img.pixels.end(), m.data);
    return m;
}

static RgbImage from_mat(const cv::Mat& m) {
    cv::Mat c = m.isContinuous() ? m : m.clone();
    RgbImage r;
    r.width = c.cols;
    r.height = c.rows;
    r.pixels.assign(c.data, c.data + size_t(c.cols) * c.rows * 3);
    return r;
}

RgbImage load_image_for_display(const std::string& path) { return from_mat(load_image_rgb8(path)); }

std::string encode_png(const RgbImage& image) {
    cv::Mat bgr;
    cv::cvtColor(to_mat(image), bgr, cv::COLOR_RGB2BGR);
    std::vector<uchar> buf;
    if (!cv::imencode(".png", bgr, buf)) throw Error("encode_png: PNG encoding failed");
    return std::string(buf.begin(), buf.end());
}

void save_png(const RgbImage& image, const std::string& path) {
    write_file_atomic(path, encode_png(image), true);
}

// --- patches ----------------------------------------------------------------------------------

// Pixels whose centres lie inside the patch's original box (may be empty).
static cv::Rect patch_rect(const ImageGeometry& g, int index, int width, int height) {
    const Box b = g.patch_box_original(index);
    const int x0 = std::clamp(int(std::ceil(b.x0 - 0.5)), 0, width);
    const int x1 = std::clamp(int(std::ceil(b.x1 - 0.5)), 0, width);
    const int y0 = std::clamp(int(std::ceil(b.y0 - 0.5)), 0, height);
    const int y1 = std::clamp(int(std::ceil(b.y1 - 0.5)), 0, height);
    return cv::Rect(x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0));
}

static const cv::Scalar kPivotColour(255, 0, 255);
static const cv::Scalar kFadeGrey(40, 40, 40);

static cv::Vec3b viridis(double t) {
    static cv::Mat lut;
    if (lut.empty()) {
        cv::Mat ramp(256, 1, CV_8UC1);
        for (int i = 0; i < 256; i++) ramp.at<uint8_t>(i) = uint8_t(i);
        cv::Mat bgr;
        cv::applyColorMap(ramp, bgr, cv::COLORMAP_VIRIDIS);
        cv::cvtColor(bgr, lut, cv::COLOR_BGR2RGB);
    }
    const int i = std::clamp(int(std::lround(t * 255.0)), 0, 255);
    return lut.at<cv::Vec3b>(i);
}

// ASCII for Hershey fonts: one '?' per non-ASCII code point, controls become spaces.
static std::string ascii_text(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c < 0x80) out += (c < 0x20 || c == 0x7F) ? ' ' : char(c);
        else if (c >= 0xC0) out += '?';  // lead byte of a multi-byte sequence
    }
    return out;
}

static void put_text(cv::Mat& m, const std::string& text, cv::Point org, double scale,
                     const cv::Scalar& colour, int thickness = 1, bool outline = false) {
    const std::string t = ascii_text(text);
    if (outline)
        cv::putText(m, t, org, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0), thickness + 2, cv::LINE_AA);
    cv::putText(m, t, org, cv::FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv::LINE_AA);
}

static int text_width(const std::string& text, double scale, int thickness = 1) {
    int base = 0;
    return cv::getTextSize(ascii_text(text), cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &base).width;
}

// Greedy word wrap to max_width pixels; '\n' starts a new line; overlong words are split.
static std::vector<std::string> wrap_text(const std::string& text, double scale, int max_width) {
    std::vector<std::string> lines;
    std::string para;
    auto flush_para = [&](const std::string& p) {
        std::string line, word;
        std::vector<std::string> words;
        for (size_t i = 0; i <= p.size(); i++) {
            if (i == p.size() || p[i] == ' ' || p[i] == '\t') {
                if (!word.empty()) words.push_back(word);
                word.clear();
            } else word += p[i];
        }
        for (std::string w : words) {
            while (text_width(w, scale) > max_width && w.size() > 1) {  // split an overlong word
                if (!line.empty()) { lines.push_back(line); line.clear(); }
                size_t n = w.size() - 1;
                while (n > 1 && text_width(w.substr(0, n), scale) > max_width) n--;
                lines.push_back(w.substr(0, n));
                w = w.substr(n);
            }
            const std::string candidate = line.empty() ? w : line + " " + w;
            if (text_width(candidate, scale) <= max_width) line = candidate;
            else { lines.push_back(line); line = w; }
        }
        lines.push_back(line);
    };
    for (char c : text) {
        if (c == '\n') { flush_para(para); para.clear(); }
        else para += c;
    }
    flush_para(para);
    return lines;
}

int overlay_legend_height(int width) { return std::max(28, width / 20); }

// --- overlay ----------------------------------------------------------------------------------

static const std::vector<float>* heat_scores(const PruningResult& p, const std::string& mode) {
    if (mode == "dup") return &p.dup_max;
    if (mode == "fastv") return &p.fastv_score;
    if (mode == "keynorm") return &p.key_l1;
    return nullptr;
}

RgbImage render_overlay(const RgbImage& original, const ImageGeometry& geometry,
                        const PruningResult& pruning, const OverlayOptions& options) {
    const std::string& mode = options.mode;
    if (mode != "kept" && mode != "dup" && mode != "fastv" && mode != "keynorm")
        throw Error(str_cat("overlay: mode '", mode, "' is not kept, dup, fastv or keynorm"));
    if (options.view != "auto" && options.view != "tiles" && options.view != "base")
        throw Error(str_cat("overlay: view '", options.view, "' is not auto, tiles or base"));
    cv::Mat pic = to_mat(original);
    const int W = pic.cols, H = pic.rows;
    const int n = geometry.num_tokens();
    // LLaVA-NeXT: the base image's tokens and the tiles' tokens cover the same pixels, so one view
    // is drawn at a time (newline tokens have no pixels); LLaVA-1.5 has the one view 0.
    const int view = geometry.tokens.empty() || options.view == "base" ? 0 : 1;
    auto shown = [&](int i) { return geometry.view_of(i) == view; };

    const std::vector<float>* scores = heat_scores(pruning, mode);
    const bool heat = scores && int(scores->size()) == n && n > 0;
    float lo = 0, hi = 0;
    if (heat) {
        lo = *std::min_element(scores->begin(), scores->end());
        hi = *std::max_element(scores->begin(), scores->end());
    }

    const std::set<int> kept(pruning.kept_image_indices.begin(), pruning.kept_image_indices.end());
    const bool prune_shown = pruning.method != "none";
    const double fade = std::clamp(options.fade, 0.0, 1.0);
    for (int i = 0; i < n; i++) {
        if (!shown(i)) continue;
        const cv::Rect r = patch_rect(geometry, i, W, H);
        if (r.area() == 0) continue;
        cv::Mat roi = pic(r);
        if (heat) {
            const double t = hi > lo ? (double((*scores)[i]) - lo) / (double(hi) - lo) : 0.5;
            const cv::Vec3b c = viridis(t);
            cv::Mat tint(roi.size(), CV_8UC3, cv::Scalar(c[0], c[1], c[2]));
            cv::addWeighted(roi, 0.45, tint, 0.55, 0.0, roi);
        } else if (prune_shown && !kept.count(i)) {
            cv::Mat grey(roi.size(), CV_8UC3, kFadeGrey);
            cv::addWeighted(roi, fade, grey, 1.0 - fade, 0.0, roi);
        }
    }

    if (options.mark_unseen && n > 0) {
        // The model's view is the union of the patch boxes: everything outside it (the margins a
        // centre crop drops) is darkened and hatched so it never reads as "kept".
        cv::Rect seen;
        if (geometry.tokens.empty()) {
            seen = patch_rect(geometry, 0, W, H) | patch_rect(geometry, n - 1, W, H);
        } else {
            for (int i = 0; i < n; i++)
                if (shown(i)) seen |= patch_rect(geometry, i, W, H);
        }
        cv::Mat unseen(H, W, CV_8U, cv::Scalar(255));
        unseen(seen).setTo(0);
        if (cv::countNonZero(unseen) > 0) {
            cv::Mat dark;
            cv::addWeighted(pic, 0.5, cv::Mat(pic.size(), CV_8UC3, kFadeGrey), 0.5, 0.0, dark);
            const int step = std::max(8, std::min(W, H) / 40);
            for (int k = -H; k < W; k += step)
                cv::line(dark, cv::Point(k, H), cv::Point(k + H, 0), cv::Scalar(200, 200, 200), 1, cv::LINE_AA);
            dark.copyTo(pic, unseen);
        }
    }

    if (options.show_grid) {
        for (int i = 0; i < n; i++) {
            if (!shown(i)) continue;
            const cv::Rect r = patch_rect(geometry, i, W, H);
            if (r.area() > 0) cv::rectangle(pic, r, cv::Scalar(255, 255, 255), 1);
        }
    }

    if (options.show_pivots && pruning.method != "none") {
        std::vector<std::pair<int, int>> pivots;  // (image-relative index, processing order)
        for (const Pivot& p : pruning.pivots)
            if (p.role == "image") pivots.push_back({p.index, p.order});
        if (pivots.empty())
            for (size_t k = 0; k < pruning.pivot_image_indices.size(); k++)
                pivots.push_back({pruning.pivot_image_indices[k], int(k)});
        for (const auto& [index, order] : pivots) {
            if (index < 0 || index >= n || !shown(index)) continue;
            const cv::Rect r = patch_rect(geometry, index, W, H);
            if (r.area() == 0) continue;
            // Outline and label drawn on the patch's own view, so nothing spills onto neighbours.
            cv::Mat roi = pic(r);
            const int t = std::min(std::max(2, std::min(r.width, r.height) / 8), std::min(r.width, r.height));
            roi(cv::Rect(0, 0, r.width, t)).setTo(kPivotColour);
            roi(cv::Rect(0, r.height - t, r.width, t)).setTo(kPivotColour);
            roi(cv::Rect(0, 0, t, r.height)).setTo(kPivotColour);
            roi(cv::Rect(r.width - t, 0, t, r.height)).setTo(kPivotColour);
            const double scale = std::clamp(r.height / 32.0, 0.3, 2.0);
            put_text(roi, std::to_string(order), cv::Point(t + 1, r.height / 2 + int(6 * scale)), scale,
                     kPivotColour, 1, true);
        }
    }

    if (!options.legend) return from_mat(pic);

    const int lh = overlay_legend_height(W);
    cv::Mat out(H + lh, W, CV_8UC3, cv::Scalar(32, 32, 32));
    pic.copyTo(out(cv::Rect(0, 0, W, H)));
    const double ts = lh / 48.0;
    const int base_y = H + lh / 2 + int(8 * ts);
    const int pad = std::max(4, lh / 6);
    if (heat) {
        char buf[64];
        std::snprintf(buf, sizeof(buf), "%.3g", double(lo));
        const std::string lo_s = buf;
        std::snprintf(buf, sizeof(buf), "%.3g", double(hi));
        const std::string hi_s = buf;
        const std::string name = mode == "dup" ? "dup_max" : mode == "fastv" ? "fastv_score" : "key_l1";
        put_text(out, name + " " + lo_s, cv::Point(pad, base_y), ts, cv::Scalar(230, 230, 230));
        const int bar_x0 = pad * 2 + text_width(name + " " + lo_s, ts);
        const int bar_x1 = W - pad * 2 - text_width(hi_s, ts);
        for (int x = bar_x0; x < bar_x1; x++) {
            const cv::Vec3b c = viridis(double(x - bar_x0) / std::max(1, bar_x1 - bar_x0 - 1));
            cv::line(out, cv::Point(x, H + lh / 4), cv::Point(x, H + lh - lh / 4), cv::Scalar(c[0], c[1], c[2]));
        }
        put_text(out, hi_s, cv::Point(W - pad - text_width(hi_s, ts), base_y), ts, cv::Scalar(230, 230, 230));
    } else {
        std::string text;
        if (!prune_shown) text = str_cat("none: all ", n, " patches kept");
        else text = str_cat(pruning.method, ": kept ", pruning.kept_count, " / ", n);
        if (scores) text += str_cat("  (no ", mode, " scores)");
        put_text(out, text, cv::Point(pad, base_y), ts, cv::Scalar(230, 230, 230));
        if (prune_shown && !pruning.pivot_image_indices.empty() && options.show_pivots) {
            const std::string pv = "pivots";
            const int x = W - pad - text_width(pv, ts);
            put_text(out, pv, cv::Point(x, base_y), ts, kPivotColour);
        }
    }
    return from_mat(out);
}

// --- composite --------------------------------------------------------------------------------

static std::string human_bytes(int64_t b) {
    char buf[64];
    if (b >= (int64_t(1) << 30)) std::snprintf(buf, sizeof(buf), "%.2f GiB", double(b) / double(1 << 30));
    else if (b >= (int64_t(1) << 20)) std::snprintf(buf, sizeof(buf), "%.2f MiB", double(b) / double(1 << 20));
    else if (b >= 1024) std::snprintf(buf, sizeof(buf), "%.1f KiB", double(b) / 1024.0);
    else std::snprintf(buf, sizeof(buf), "%lld B", (long long)b);
    return buf;
}

static std::string ms(double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f", v);
    return buf;
}

RgbImage render_composite(const RgbImage& original, const ImageGeometry& geometry,
                          const std::vector<MethodRun>& runs, const std::string& question,
                          const OverlayOptions& options) {
    if (runs.empty()) throw Error("render_composite: no runs to show");
    const cv::Mat pic = to_mat(original);
    const int col_w = 360, margin = 12;
    const double text_scale = 0.45, title_scale = 0.55;
    const int line_h = 18, title_h = 22;

    // The original scaled to the column width, and the geometry to match.
    const double kx = double(col_w) / pic.cols;
    const int small_h = std::max(1, int(std::lround(pic.rows * kx)));
    const double ky = double(small_h) / pic.rows;
    cv::Mat small;
    cv::resize(pic, small, cv::Size(col_w, small_h), 0, 0, kx < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    const ImageGeometry g = geometry.scaled_to(col_w, small_h);
    const RgbImage small_rgb = from_mat(small);

    struct Column {
        cv::Mat overlay;
        std::vector<std::pair<std::string, bool>> lines;  // text, is title
    };
    std::vector<Column> cols;
    int body_h = 0;
    for (const MethodRun& run : runs) {
        Column c;
        c.overlay = to_mat(render_overlay(small_rgb, g, run.pruning, options));
        const int n = run.pruning.num_image_tokens > 0 ? run.pruning.num_image_tokens : geometry.num_tokens();
        const int kept = run.pruning.method == "none" ? n : run.pruning.kept_count;
        c.lines.push_back({run.config.label(), true});
        c.lines.push_back({str_cat("kept ", kept, " / ", n, run.cancelled ? "  (cancelled)" : ""), false});
        c.lines.push_back({"", false});
        for (const std::string& l : wrap_text(run.text.empty() ? "(no answer)" : run.text, text_scale, col_w))
            c.lines.push_back({l, false});
        c.lines.push_back({"", false});
        c.lines.push_back({str_cat("prefill ", ms(run.timing_ms.prefill), " ms   decode ", ms(run.timing_ms.decode), " ms"), false});
        c.lines.push_back({str_cat("total ", ms(run.timing_ms.total), " ms   KV ", human_bytes(run.kv_cache_bytes)), false});
        int h = c.overlay.rows + 8;
        for (const auto& l : c.lines) h += l.second ? title_h : line_h;
        body_h = std::max(body_h, h);
        cols.push_back(std::move(c));
    }

    const int W = int(cols.size()) * col_w + (int(cols.size()) + 1) * margin;
    const std::vector<std::string> q_lines = wrap_text("Q: " + question, title_scale, W - 2 * margin);
    const int header_h = margin + int(q_lines.size()) * title_h + margin / 2;
    const int Hc = header_h + body_h + margin;
    cv::Mat out(Hc, W, CV_8UC3, cv::Scalar(248, 248, 248));
    const cv::Scalar ink(20, 20, 20);
    int y = margin;
    for (const std::string& l : q_lines) {
        y += title_h;
        put_text(out, l, cv::Point(margin, y - 6), title_scale, ink, 1);
    }
    for (size_t i = 0; i < cols.size(); i++) {
        const int x = margin + int(i) * (col_w + margin);
        int cy = header_h;
        cols[i].overlay.copyTo(out(cv::Rect(x, cy, cols[i].overlay.cols, cols[i].overlay.rows)));
        cy += cols[i].overlay.rows + 8;
        for (const auto& [text, title] : cols[i].lines) {
            cy += title ? title_h : line_h;
            put_text(out, text, cv::Point(x, cy - 5), title ? title_scale : text_scale, ink, title ? 2 : 1);
        }
    }
    return from_mat(out);
}

}  // namespace dl
