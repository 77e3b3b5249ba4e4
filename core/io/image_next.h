// LLaVA-NeXT's "anyres" image processing, as Hugging Face's LlavaNextImageProcessor computes it,
// and the layout of the image span the model packs from it (LlavaNextModel.pack_image_features).
//
// Processor (image_processing_llava_next, PIL backend): pick the best resolution among
// image_grid_pinpoints (select_best_resolution: most effective pixels, then least waste), resize
// the picture into it keeping its aspect ratio (get_patch_output_size: the limiting side exactly,
// the other ceil-ed and capped), paste it centred on black (divmod: the odd pixel goes right /
// bottom), cut that into image_size tiles row by row; the base image is the whole picture resized
// to image_size x image_size (aspect not kept). pixel_values = [base, tile(0,0), tile(0,1), ...],
// each rescaled and normalised as CLIPImageProcessor does.
//
// Packing: each tile gives grid x grid features; together they form a (tile_rows * grid) x
// (tile_cols * grid) feature map of the padded picture. unpad_image drops the rows (or columns)
// that only show padding: the same count from both ends, computed from the aspect ratios
// (round(x, 7) then int, as Python). Span = the base image's grid*grid features, then per kept
// row its kept columns and one image_newline token.
#pragma once

#include <opencv2/core.hpp>
#include <vector>

#include "core/io/config.h"
#include "core/io/image.h"

namespace dl {

// HF select_best_resolution on an original (height, width).
Resolution select_best_resolution(int height, int width, const std::vector<Resolution>& pinpoints);

struct NextLayout {
    Resolution best;                         // chosen pinpoint (pixels)
    int tile = 0;                            // tile side = the vision tower's image_size
    int grid = 0;                            // patches per tile side
    int tile_rows = 0, tile_cols = 0;        // tiles
    int resized_width = 0, resized_height = 0, paste_x = 0, paste_y = 0;  // picture inside best
    int feature_rows = 0, feature_cols = 0;  // tile_rows * grid, tile_cols * grid
    int row0 = 0, row1 = 0, col0 = 0, col1 = 0;  // the unpadded feature rows / columns [0, 1)
    int base_tokens() const { return grid * grid; }
    int rows() const { return row1 - row0; }
    int cols() const { return col1 - col0; }
    // Length of the packed image span: base + rows * (cols + 1 newline).
    int num_tokens() const { return base_tokens() + rows() * (cols() + 1); }
    int num_tiles() const { return tile_rows * tile_cols; }
};

// The layout for a picture of height x width. tile: vision image_size; patch: vision patch_size.
// Throws dl::Error on empty pinpoints or a non-positive size.
NextLayout next_layout(int height, int width, const std::vector<Resolution>& pinpoints, int tile, int patch);

// Image tokens of a picture of height x width under this model config (llava_next only).
int next_image_token_count(const LlavaConfig& config, int height, int width);

// The processor on an RGB8 picture: pixel_values [1 + tiles, 3, tile, tile] float32 CPU and the
// geometry of every token of the packed span (mode "anyres"). `model` gives the packing's
// pinpoints and the vision geometry; the processor's own pinpoints must be the same (HF would
// otherwise fail on a token-count mismatch). Throws dl::Error naming the offending setting.
PreprocessedImage preprocess_image_next(const cv::Mat& rgb8, const PreprocessorConfig& cfg,
                                        const LlavaConfig& model);

}  // namespace dl
