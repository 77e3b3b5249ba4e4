// Image decoding and the CLIP preprocessing LLaVA-1.5 uses, reproduced pixel for pixel.
//
// load_image_rgb8 decodes any common file (8/16-bit, gray, gray+alpha, RGB, RGBA, EXIF-rotated
// JPEG) into RGB8 the way PIL's Image.open(...).convert("RGB") does: alpha is dropped (not
// composited), EXIF orientation is applied, 16-bit samples keep their high byte (v >> 8, as PIL
// does for 16-bit RGB PNGs; PIL clips 16-bit *grayscale* to 255 instead, which we do not copy).
// preprocess_image then runs Hugging Face's CLIPImageProcessor: resize (shortest edge, PIL
// bicubic with antialiasing, re-implemented here because OpenCV's INTER_CUBIC differs), centre
// crop, rescale, normalise; "pad" first pads to a square with the mean colour like the original
// LLaVA-1.5 expand2square. The returned ImageGeometry maps each patch back to the original.
#pragma once

#include <ATen/ATen.h>
#include <opencv2/core.hpp>
#include <string>

#include "core/api.h"
#include "core/io/config.h"

namespace dl {

// Decodes `path` into CV_8UC3, RGB order. Throws dl::Error naming the file when it is missing,
// unreadable, empty, not an image, or larger than 200 megapixels.
cv::Mat load_image_rgb8(const std::string& path);

// Same decoding from bytes already in memory; `name` is used in error messages.
cv::Mat decode_image_rgb8(const std::string& bytes, const std::string& name);

// PIL's Image.resize(size, Image.BICUBIC) for 8-bit images with 1..4 channels: separable
// convolution with a = -0.5, support widened by the downscale factor (antialiasing), horizontal
// pass then vertical, 22-bit fixed-point coefficients and uint8 rounding/clipping between passes.
// A pass whose size does not change is skipped, as in PIL; the vertical pass goes first when the
// height shrinks by more than twice as many pixels as the width (Pillow 13's order).
cv::Mat resize_bicubic_pil(const cv::Mat& src8, int width, int height);

// LLaVA-1.5 expand2square: pads to a max(w,h) square filled with `fill` (RGB), the picture pasted
// at ((side-w)/2, (side-h)/2) rounded down. Returns the input unchanged when already square.
cv::Mat expand_to_square(const cv::Mat& rgb8, const cv::Scalar& fill, int* paste_x = nullptr,
                         int* paste_y = nullptr);

// Rescale and normalise an RGB8 picture (CV_8UC3) into CHW float32 at `out` (3 * rows * cols
// floats), as CLIPImageProcessor: float32(v * rescale_factor) then (v - mean) / std.
void normalize_into(const cv::Mat& rgb8, const PreprocessorConfig& cfg, float* out);

struct PreprocessedImage {
    at::Tensor pixel_values;   // [1,3,crop_h,crop_w] float32 CPU, RGB, normalised (NeXT: [1+tiles,3,S,S])
    ImageGeometry geometry;
};

// Runs the CLIPImageProcessor pipeline on an RGB8 image. mode: "crop" (llava-hf) or "pad"
// (original LLaVA-1.5); "" or "auto" uses cfg.mode. patch_size: the vision tower's patch size,
// used to fill geometry.rows/cols. Throws dl::Error on an empty image or a bad config.
PreprocessedImage preprocess_image(const cv::Mat& rgb8, const PreprocessorConfig& cfg,
                                   const std::string& mode, int patch_size);

}  // namespace dl
