// Image decoding (OpenCV) and CLIP preprocessing with PIL's bicubic resampling.
//
// The resampler follows the description of Pillow's ImagingResample (libImaging/Resample.c):
// per output sample a window of the bicubic kernel (a = -0.5) centred on (x + 0.5) * scale,
// widened by max(scale, 1) so that downscaling averages (antialiasing), normalised to sum 1 in
// double, then quantised to 22-bit fixed point; accumulate with a rounding bias of 2^21 and
// shift/clip to uint8. Horizontal pass first, then vertical, on the uint8 intermediate.
#include "core/io/image.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/common.h"

namespace dl {

static const int64_t kMaxPixels = int64_t(200) * 1000 * 1000;     // 200 megapixels
static const int64_t kMaxFileBytes = int64_t(1) << 30;            // 1 GiB

// --- decoding ---------------------------------------------------------------------------------

static uint32_t be32(const unsigned char* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

// Width/height from the header of a PNG or JPEG without decoding; false when not found.
static bool sniff_size(const std::string& bytes, int64_t* w, int64_t* h) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const size_t n = bytes.size();
    if (n >= 24 && std::memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0 && std::memcmp(p + 12, "IHDR", 4) == 0) {
        *w = be32(p + 16);
        *h = be32(p + 20);
        return true;
    }
    if (n >= 4 && p[0] == 0xFF && p[1] == 0xD8) {
        size_t i = 2;
        while (i + 4 <= n) {
            if (p[i] != 0xFF) return false;
            const unsigned char marker = p[i + 1];
            if (marker == 0xFF) { i++; continue; }  // fill byte
            if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { i += 2; continue; }
            const size_t len = (size_t(p[i + 2]) << 8) | p[i + 3];
            const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
                             marker != 0xCC;
            if (sof) {
                if (i + 9 > n) return false;
                *h = (int64_t(p[i + 5]) << 8) | p[i + 6];
                *w = (int64_t(p[i + 7]) << 8) | p[i + 8];
                return true;
            }
            if (marker == 0xDA || len < 2) return false;
            i += 2 + len;
        }
    }
    return false;
}

cv::Mat decode_image_rgb8(const std::string& bytes, const std::string& name) {
    if (bytes.empty()) throw Error(str_cat(name, ": empty file (0 bytes), not an image"));
    int64_t w = 0, h = 0;
    // Header sizes are 32-bit: their product fits in 64 bits unsigned, not signed.
    if (sniff_size(bytes, &w, &h) && uint64_t(w) * uint64_t(h) > uint64_t(kMaxPixels))
        throw Error(str_cat(name, ": image is ", w, "x", h, ", larger than the ",
                            kMaxPixels / 1000000, " megapixel limit"));

    // OpenCV hands a DICOM file (a 128-byte preamble, then "DICM") to GDCM, whose assertions abort
    // the whole process on a corrupt one (found by tests/fuzz/fuzz_image). Not a photo format.
    if (bytes.size() >= 132 && bytes.compare(128, 4, "DICM") == 0)
        throw Error(str_cat(name, ": DICOM files are not supported"));

    // ANYDEPTH keeps 16-bit samples so we choose the 8-bit mapping; ANYCOLOR keeps gray as one
    // channel and reduces alpha images to 3. Any flag other than IMREAD_UNCHANGED makes OpenCV
    // apply the EXIF orientation.
    cv::Mat decoded;
    const cv::Mat buf(1, int(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    try {
        decoded = cv::imdecode(buf, cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR);
    } catch (const cv::Exception& e) {
        throw Error(str_cat(name, ": cannot decode image (", e.err, ")"));
    } catch (const std::bad_alloc&) {
        throw Error(str_cat(name, ": image too large to decode"));
    }
    if (decoded.empty()) throw Error(str_cat(name, ": not a recognised image or corrupt"));
    if (int64_t(decoded.cols) * decoded.rows > kMaxPixels)
        throw Error(str_cat(name, ": image is ", decoded.cols, "x", decoded.rows, ", larger than the ",
                            kMaxPixels / 1000000, " megapixel limit"));

    // depth -> 8 bit
    cv::Mat d8;
    const int cn = decoded.channels();
    switch (decoded.depth()) {
    case CV_8U: d8 = decoded; break;
    case CV_16U: {
        d8.create(decoded.rows, decoded.cols, CV_8UC(cn));
        for (int y = 0; y < decoded.rows; y++) {
            const uint16_t* s = decoded.ptr<uint16_t>(y);
            uint8_t* d = d8.ptr<uint8_t>(y);
            for (int x = 0; x < decoded.cols * cn; x++) d[x] = uint8_t(s[x] >> 8);
        }
        break;
    }
    case CV_32F:
    case CV_64F: decoded.convertTo(d8, CV_8U, 255.0); break;  // float images are in [0,1]
    default: decoded.convertTo(d8, CV_8U); break;
    }

    cv::Mat rgb;
    if (cn == 1) cv::cvtColor(d8, rgb, cv::COLOR_GRAY2RGB);
    else if (cn == 3) cv::cvtColor(d8, rgb, cv::COLOR_BGR2RGB);
    else if (cn == 4) cv::cvtColor(d8, rgb, cv::COLOR_BGRA2RGB);
    else if (cn == 2) {
        std::vector<cv::Mat> planes;
        cv::split(d8, planes);
        cv::cvtColor(planes[0], rgb, cv::COLOR_GRAY2RGB);
    } else throw Error(str_cat(name, ": unsupported channel count ", cn));
    return rgb;
}

cv::Mat load_image_rgb8(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
        throw Error(str_cat(path, ": cannot open image (", std::strerror(errno), ")"));
    if (S_ISDIR(st.st_mode)) throw Error(str_cat(path, ": is a directory, not an image"));
    if (int64_t(st.st_size) > kMaxFileBytes)
        throw Error(str_cat(path, ": file is ", int64_t(st.st_size), " bytes, too large for an image"));
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(str_cat(path, ": cannot read image (", std::strerror(errno), ")"));
    std::ostringstream ss;
    ss << f.rdbuf();
    if (f.bad()) throw Error(str_cat(path, ": read error"));
    return decode_image_rgb8(ss.str(), path);
}

// --- PIL bicubic ------------------------------------------------------------------------------

static const int kPrecisionBits = 32 - 8 - 2;

static double bicubic_kernel(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// Fixed-point taps for resampling in_size -> out_size. taps[o*ksize + j] weighs input start[o]+j.
struct ResampleTaps {
    int ksize = 0;
    std::vector<int> start, count;
    std::vector<int32_t> taps;
};

static ResampleTaps make_taps(int in_size, int out_size) {
    ResampleTaps t;
    const double scale = double(in_size) / out_size;
    const double filterscale = std::max(scale, 1.0);
    const double support = 2.0 * filterscale;
    t.ksize = int(std::ceil(support)) * 2 + 1;
    t.start.resize(out_size);
    t.count.resize(out_size);
    t.taps.assign(size_t(out_size) * t.ksize, 0);
    const double ss = 1.0 / filterscale;  // PIL multiplies by the reciprocal
    std::vector<double> w(t.ksize);
    for (int o = 0; o < out_size; o++) {
        const double center = (o + 0.5) * scale;
        int lo = int(center - support + 0.5);  // C truncation, as PIL
        if (lo < 0) lo = 0;
        int hi = int(center + support + 0.5);
        if (hi > in_size) hi = in_size;
        const int cnt = hi - lo;
        double sum = 0.0;
        for (int j = 0; j < cnt; j++) {
            w[j] = bicubic_kernel((j + lo - center + 0.5) * ss);
            sum += w[j];
        }
        for (int j = 0; j < cnt; j++) {
            const double v = sum != 0.0 ? w[j] / sum : w[j];
            const double s = v * double(1 << kPrecisionBits);
            t.taps[size_t(o) * t.ksize + j] = int32_t(v < 0 ? -0.5 + s : 0.5 + s);
        }
        t.start[o] = lo;
        t.count[o] = cnt;
    }
    return t;
}

static inline uint8_t clip8_fixed(int32_t acc) {
    const int32_t v = acc >> kPrecisionBits;  // arithmetic shift: floor
    return uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// src: rows x in_w x cn -> rows x out_w x cn
static cv::Mat resample_horizontal(const cv::Mat& src, int out_w) {
    const int cn = src.channels();
    const ResampleTaps t = make_taps(src.cols, out_w);
    cv::Mat dst(src.rows, out_w, src.type());
    for (int y = 0; y < src.rows; y++) {
        const uint8_t* s = src.ptr<uint8_t>(y);
        uint8_t* d = dst.ptr<uint8_t>(y);
        for (int x = 0; x < out_w; x++) {
            const int32_t* k = &t.taps[size_t(x) * t.ksize];
            const int lo = t.start[x], cnt = t.count[x];
            for (int c = 0; c < cn; c++) {
                int32_t acc = 1 << (kPrecisionBits - 1);
                for (int j = 0; j < cnt; j++) acc += int32_t(s[(lo + j) * cn + c]) * k[j];
                d[x * cn + c] = clip8_fixed(acc);
            }
        }
    }
    return dst;
}

// src: in_h x cols x cn -> out_h x cols x cn
static cv::Mat resample_vertical(const cv::Mat& src, int out_h) {
    const int row_len = src.cols * src.channels();
    const ResampleTaps t = make_taps(src.rows, out_h);
    cv::Mat dst(out_h, src.cols, src.type());
    std::vector<int32_t> acc(row_len);
    for (int y = 0; y < out_h; y++) {
        const int32_t* k = &t.taps[size_t(y) * t.ksize];
        std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
        for (int j = 0; j < t.count[y]; j++) {
            const uint8_t* s = src.ptr<uint8_t>(t.start[y] + j);
            const int32_t kj = k[j];
            for (int i = 0; i < row_len; i++) acc[i] += int32_t(s[i]) * kj;
        }
        uint8_t* d = dst.ptr<uint8_t>(y);
        for (int i = 0; i < row_len; i++) d[i] = clip8_fixed(acc[i]);
    }
    return dst;
}

cv::Mat resize_bicubic_pil(const cv::Mat& src8, int width, int height) {
    if (src8.empty() || src8.depth() != CV_8U || src8.channels() > 4)
        throw Error("resize_bicubic_pil: input must be a non-empty 8-bit image with 1-4 channels");
    if (width <= 0 || height <= 0)
        throw Error(str_cat("resize_bicubic_pil: bad output size ", width, "x", height));
    cv::Mat img = src8.isContinuous() ? src8 : src8.clone();
    // Pillow (>= 11, libImaging/Resample.c) runs the vertical pass first when the height shrinks
    // by more than twice as many pixels as the width; the order changes the uint8 rounding.
    const int dy = img.rows - height, dx = img.cols - width;
    if (dy > 0 && dy > 2 * dx) img = resample_vertical(img, height);
    if (width != img.cols) img = resample_horizontal(img, width);
    if (height != img.rows) img = resample_vertical(img, height);
    if (img.data == src8.data) img = src8.clone();
    return img;
}

// --- preprocessing ----------------------------------------------------------------------------

cv::Mat expand_to_square(const cv::Mat& rgb8, const cv::Scalar& fill, int* paste_x, int* paste_y) {
    const int w = rgb8.cols, h = rgb8.rows;
    int px = 0, py = 0;
    cv::Mat out;
    if (w == h) {
        out = rgb8;
    } else {
        const int side = std::max(w, h);
        px = (side - w) / 2;
        py = (side - h) / 2;
        out = cv::Mat(side, side, rgb8.type(), fill);
        rgb8.copyTo(out(cv::Rect(px, py, w, h)));
    }
    if (paste_x) *paste_x = px;
    if (paste_y) *paste_y = py;
    return out;
}

// Crop/zero-pad one axis as HF center_crop does: returns the offset of the input in the output.
static int crop_offset(int in, int out) {
    if (in >= out) return -((in - out) / 2);
    return (out - in) / 2;
}

void normalize_into(const cv::Mat& rgb8, const PreprocessorConfig& cfg, float* out) {
    // rescale: the float64 product cast to float32 (numpy); normalise in float32
    const int H = rgb8.rows, W = rgb8.cols;
    float mean[3], stdv[3];
    for (int c = 0; c < 3; c++) {
        mean[c] = float(cfg.image_mean[c]);
        stdv[c] = float(cfg.image_std[c]);
    }
    for (int y = 0; y < H; y++) {
        const uint8_t* row = rgb8.ptr<uint8_t>(y);
        for (int x = 0; x < W; x++) {
            for (int c = 0; c < 3; c++) {
                float v = cfg.do_rescale ? float(double(row[x * 3 + c]) * cfg.rescale_factor)
                                         : float(row[x * 3 + c]);
                if (cfg.do_normalize) v = (v - mean[c]) / stdv[c];
                out[(size_t(c) * H + y) * W + x] = v;
            }
        }
    }
}

PreprocessedImage preprocess_image(const cv::Mat& rgb8, const PreprocessorConfig& cfg,
                                   const std::string& mode_arg, int patch_size) {
    if (rgb8.empty() || rgb8.type() != CV_8UC3)
        throw Error("preprocess_image: image must be a non-empty CV_8UC3 RGB matrix");
    const std::string mode = (mode_arg.empty() || mode_arg == "auto") ? cfg.mode : mode_arg;
    if (mode != "crop" && mode != "pad")
        throw Error(str_cat("preprocess_image: mode '", mode, "' is not crop or pad"));
    if (cfg.image_mean.size() != 3 || cfg.image_std.size() != 3)
        throw Error("preprocessor_config: image_mean and image_std need 3 values");
    if (cfg.shortest_edge <= 0 || cfg.crop_width <= 0 || cfg.crop_height <= 0)
        throw Error("preprocessor_config: shortest_edge and crop_size must be positive");
    if (patch_size <= 0) throw Error(str_cat("preprocess_image: bad patch_size ", patch_size));

    const int orig_w = rgb8.cols, orig_h = rgb8.rows;
    double scale_x = 1, scale_y = 1, offset_x = 0, offset_y = 0;

    // 1. pad to square with the mean colour (original LLaVA-1.5)
    cv::Mat img = rgb8;
    if (mode == "pad") {
        const cv::Scalar fill(int(cfg.image_mean[0] * 255), int(cfg.image_mean[1] * 255),
                              int(cfg.image_mean[2] * 255));
        int px = 0, py = 0;
        img = expand_to_square(rgb8, fill, &px, &py);
        offset_x = px;
        offset_y = py;
    }

    // 2. resize: shortest edge -> S, long edge -> int(S * long / short) (HF default_to_square=False)
    if (cfg.do_resize) {
        const int w = img.cols, h = img.rows;
        const int s = cfg.shortest_edge;
        const int short_e = std::min(w, h), long_e = std::max(w, h);
        const int new_long = int(double(int64_t(s) * long_e) / double(short_e));
        const int new_w = w <= h ? s : new_long;
        const int new_h = w <= h ? new_long : s;
        if (new_w != w || new_h != h) img = resize_bicubic_pil(img, new_w, new_h);
        const double sx = double(new_w) / w, sy = double(new_h) / h;
        scale_x *= sx;
        scale_y *= sy;
        offset_x *= sx;
        offset_y *= sy;
    }

    // 3. centre crop (zero padding where the picture is smaller than the crop)
    if (cfg.do_center_crop) {
        const int cw = cfg.crop_width, ch = cfg.crop_height;
        const int ox = crop_offset(img.cols, cw), oy = crop_offset(img.rows, ch);
        cv::Mat out(ch, cw, CV_8UC3, cv::Scalar(0, 0, 0));
        // intersection of the input, placed at (ox, oy), with the output
        const int x0 = std::max(0, ox), y0 = std::max(0, oy);
        const int x1 = std::min(cw, ox + img.cols), y1 = std::min(ch, oy + img.rows);
        img(cv::Rect(x0 - ox, y0 - oy, x1 - x0, y1 - y0)).copyTo(out(cv::Rect(x0, y0, x1 - x0, y1 - y0)));
        img = out;
        offset_x += ox;
        offset_y += oy;
    }

    // 4. rescale and normalise; HWC -> CHW
    const int H = img.rows, W = img.cols;
    at::Tensor pixels = at::empty({1, 3, H, W}, at::TensorOptions().dtype(at::kFloat));
    normalize_into(img, cfg, pixels.data_ptr<float>());

    PreprocessedImage r;
    r.pixel_values = pixels;
    ImageGeometry& g = r.geometry;
    g.patch_size = patch_size;
    g.rows = H / patch_size;
    g.cols = W / patch_size;
    g.image_size = W;
    g.original_width = orig_w;
    g.original_height = orig_h;
    g.mode = mode;
    g.scale_x = scale_x;
    g.scale_y = scale_y;
    g.offset_x = offset_x;
    g.offset_y = offset_y;
    return r;
}

}  // namespace dl
