// Which image token lies under a point of the original picture, and what the methods know about it.
//
// The overlay is drawn on the original image; a mouse position there is inverted through the
// ImageGeometry (preprocessed = original * scale + offset) to a patch of the rows x cols grid.
// Pure C++ over core/api.h so it is tested without widgets.
#pragma once

#include <string>
#include <vector>

#include "core/api.h"

namespace dlui {

// Patch index under original-image pixel (x, y), or -1 when the point maps outside the
// preprocessed picture (cropped away) or outside the original image. LLaVA-NeXT: the token of
// `view` (1 tiles, 0 base image) there; ignored for LLaVA-1.5.
int patch_at(const dl::ImageGeometry& geometry, double x, double y, int view = 1);

struct MethodSelection {
    std::string name;              // column title ("DART", "FastV", ...)
    const dl::PruningResult* result = nullptr;
};

// Tooltip text for patch `index`: index, row/col, key L1, similarity to each DART pivot,
// FastV score, duplication score, and which methods kept it. Lines separated by '\n'.
std::string patch_tooltip(const dl::ImageGeometry& geometry, int index,
                          const std::vector<MethodSelection>& methods);

}  // namespace dlui
