// Pictures of a pruning decision, drawn on the original image: which patches a method kept,
// DART's pivots, and per-patch score heatmaps; plus a side-by-side composite of several runs.
//
// This header includes no OpenCV or torch header (the Qt UI uses it); images travel as RgbImage.
// Patches are mapped to original pixels through ImageGeometry::patch_box_original, so a centre
// crop leaves the cropped-away margins untouched and padding never draws outside the picture.
// A pixel belongs to a patch when its centre lies inside the patch's box.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/api.h"

namespace dl {

struct RgbImage {
    int width = 0, height = 0;
    std::vector<uint8_t> pixels;  // RGB8, row-major, width*height*3 bytes
};

// Decodes an image file exactly as load_image_rgb8 does (EXIF applied, alpha dropped, 16-bit
// high byte). Throws dl::Error naming the file.
RgbImage load_image_for_display(const std::string& path);

struct OverlayOptions {
    std::string mode = "kept";  // kept | dup | fastv | keynorm
    double fade = 0.3;          // pruned pixel = fade * original + (1 - fade) * dark grey
    bool show_pivots = true;    // outline DART image pivots, labelled with their processing order
    bool show_grid = false;     // thin patch grid inside the model's view
    bool legend = true;         // a strip below the picture: counts, or the colour bar min..max
    bool mark_unseen = true;    // hatch what the model never sees (margins a centre crop drops)
    // LLaVA-NeXT: which tokens to draw, "tiles" (auto) or "base" (the whole picture at 336);
    // the other view's tokens are left untouched. Ignored for LLaVA-1.5.
    std::string view = "auto";
};

// Height in pixels of the legend strip render_overlay appends for an image of this width.
int overlay_legend_height(int width);

// The original picture with `pruning` drawn on it. Output: original.width x (original.height +
// legend strip if options.legend). Rows 0..height-1 hold the picture: in mode "kept" kept patches
// are untouched and pruned ones faded (method "none": everything untouched); in "dup" / "fastv" /
// "keynorm" every patch is tinted by dup_max / fastv_score / key_l1 (viridis, min..max of the
// scores; falls back to "kept" when the method did not compute that score). Pivot outlines are
// drawn on top. Throws dl::Error on an empty image or unknown mode.
RgbImage render_overlay(const RgbImage& original, const ImageGeometry& geometry,
                        const PruningResult& pruning, const OverlayOptions& options);

// One column per run: the overlay (scaled to a common column width), the run's label
// (PruneConfig::label()), kept count "132 / 576", the answer word-wrapped, and the figures
// (prefill, decode, total ms; KV bytes). The question heads the picture. Text is ASCII (other
// characters are drawn as '?'). Throws dl::Error when `runs` is empty.
RgbImage render_composite(const RgbImage& original, const ImageGeometry& geometry,
                          const std::vector<MethodRun>& runs, const std::string& question,
                          const OverlayOptions& options);

// PNG bytes of an image (in memory); and a PNG file written atomically (temp file + rename),
// replacing an existing file. Throws dl::Error naming the path. For no-replace writes use
// encode_png + write_file_atomic(path, bytes, false) from core/render/export.h.
std::string encode_png(const RgbImage& image);
void save_png(const RgbImage& image, const std::string& path);

}  // namespace dl
