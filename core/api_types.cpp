// Implementations of the small value-type helpers declared in core/api_types.h.
#include "core/api_types.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace dl {

int ImageGeometry::view_of(int index) const {
    if (tokens.empty()) return 0;
    return index >= 0 && index < int(tokens.size()) ? tokens[size_t(index)].view : -1;
}

Box ImageGeometry::patch_box_preprocessed(int index) const {
    Box b;
    if (!tokens.empty()) {  // NeXT: in the base picture or in the padded best-resolution picture
        if (index < 0 || index >= int(tokens.size()) || tokens[size_t(index)].view < 0) return b;
        const TokenPlace& t = tokens[size_t(index)];
        b.x0 = double(t.col) * patch_size;
        b.y0 = double(t.row) * patch_size;
        b.x1 = b.x0 + patch_size;
        b.y1 = b.y0 + patch_size;
        return b;
    }
    if (cols <= 0) return b;
    const int r = index / cols, c = index % cols;
    b.x0 = double(c) * patch_size;
    b.y0 = double(r) * patch_size;
    b.x1 = b.x0 + patch_size;
    b.y1 = b.y0 + patch_size;
    return b;
}

Box ImageGeometry::patch_box_original(int index) const {
    if (!tokens.empty()) return index >= 0 && index < int(tokens.size()) ? tokens[size_t(index)].box : Box{};
    Box p = patch_box_preprocessed(index);
    Box o;
    o.x0 = std::clamp((p.x0 - offset_x) / scale_x, 0.0, double(original_width));
    o.x1 = std::clamp((p.x1 - offset_x) / scale_x, 0.0, double(original_width));
    o.y0 = std::clamp((p.y0 - offset_y) / scale_y, 0.0, double(original_height));
    o.y1 = std::clamp((p.y1 - offset_y) / scale_y, 0.0, double(original_height));
    return o;
}

ImageGeometry ImageGeometry::scaled_to(int width, int height) const {
    ImageGeometry g = *this;
    if (original_width <= 0 || original_height <= 0) return g;
    const double sx = double(width) / original_width, sy = double(height) / original_height;
    g.original_width = width;
    g.original_height = height;
    g.scale_x /= sx;
    g.scale_y /= sy;
    for (TokenPlace& t : g.tokens) t.box = {t.box.x0 * sx, t.box.y0 * sy, t.box.x1 * sx, t.box.y1 * sy};
    return g;
}

int ImageGeometry::token_at(double x, double y, int view) const {
    if (x < 0 || y < 0 || x >= original_width || y >= original_height) return -1;
    if (tokens.empty()) {
        if (rows <= 0 || cols <= 0 || patch_size <= 0 || view != 0) return -1;
        const double px = x * scale_x + offset_x, py = y * scale_y + offset_y;
        if (px < 0 || py < 0) return -1;
        const int col = int(std::floor(px / patch_size)), row = int(std::floor(py / patch_size));
        if (col >= cols || row >= rows) return -1;
        return row * cols + col;
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
        const TokenPlace& t = tokens[i];
        if (t.view == view && x >= t.box.x0 && x < t.box.x1 && y >= t.box.y0 && y < t.box.y1) return int(i);
    }
    return -1;
}

int PruneConfig::budget_for(int n) const {
    if (method == "none") return n;
    if (keep >= 0) return std::min(keep, n);
    if (ratio >= 0) {
        const double r = std::clamp(ratio, 0.0, 1.0);
        return std::clamp(int(std::lround(double(n) * (1.0 - r))), 0, n);
    }
    return n;
}

std::string PruneConfig::label() const {
    std::ostringstream os;
    os << method;
    if (method == "none") return os.str();
    os << " K=" << layer;
    if (keep >= 0) os << " B=" << keep;
    else if (ratio >= 0) os << " R=" << ratio;
    if (method == "dart") {
        if (pivots_image != 4 || pivots_text != 4) os << " P=" << pivots_image << "+" << pivots_text;
        if (pivot_criterion != "k-norm-max") os << " " << pivot_criterion;
        if (pivot_order != "reference") os << " order=" << pivot_order;
        if (dart_scores != "compute") os << " scores=" << dart_scores;
    }
    if (method == "fastv" && fastv_score != "last") os << " score=" << fastv_score;
    if (method == "random") os << " seed=" << seed;
    return os.str();
}

}  // namespace dl
