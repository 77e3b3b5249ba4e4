// fuzz_image: image file bytes through decode_image_rgb8 (OpenCV's decoders plus our size checks
// and depth/channel mapping), the in-memory twin of load_image_rgb8. A small decoded picture then
// goes through the CLIP preprocessing the app runs next, in both modes, with a tiny crop so that
// odd sizes and aspect ratios are cheap to try.
#include <ATen/ATen.h>

#include <opencv2/core.hpp>

#include <cstdio>
#include <cstdlib>

#include "core/api.h"
#include "core/common.h"
#include "core/io/config.h"
#include "core/io/image.h"
#include "fuzz_common.h"

namespace {

dl::PreprocessorConfig tiny_config() {
    dl::PreprocessorConfig cfg;
    cfg.shortest_edge = 8;
    cfg.crop_height = 8;
    cfg.crop_width = 8;
    return cfg;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // One OpenCV thread: decoding tiny inputs in a pool only adds noise to the coverage signal.
    cv::setNumThreads(0);
    // OpenCV reads this when it is loaded, before any code of ours runs: run.sh sets it.
    if (!std::getenv("OPENCV_IO_MAX_IMAGE_PIXELS"))
        std::fprintf(stderr, "fuzz_image: OPENCV_IO_MAX_IMAGE_PIXELS is not set (run.sh sets 1048576): "
                             "inputs declaring huge pictures will make runs slow\n");
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    cv::Mat rgb;
    try {
        rgb = dl::decode_image_rgb8(std::string(reinterpret_cast<const char*>(data), size), "fuzz-input");
    } catch (const dl::Error&) {
        return 0;
    }
    if (rgb.empty() || rgb.type() != CV_8UC3) dlfuzz::fail("decode_image_rgb8 returned a non-RGB8 image");
    if (int64_t(rgb.cols) * rgb.rows > 4096) return 0;  // keep each run cheap
    static const dl::PreprocessorConfig cfg = tiny_config();
    for (const char* mode : {"crop", "pad"}) {
        dl::PreprocessedImage p = dl::preprocess_image(rgb, cfg, mode, 4);
        if (p.pixel_values.sizes() != at::IntArrayRef({1, 3, 8, 8}))
            dlfuzz::fail("preprocess_image returned the wrong shape");
        for (int i = 0; i < p.geometry.rows * p.geometry.cols; ++i) {
            (void)p.geometry.patch_box_preprocessed(i);
            (void)p.geometry.patch_box_original(i);
        }
    }
    return 0;
}
