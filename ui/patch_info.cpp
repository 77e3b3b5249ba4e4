// Mouse -> patch inversion and the hover tooltip (see patch_info.h).
#include "ui/patch_info.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace dlui {

int patch_at(const dl::ImageGeometry& g, double x, double y, int view) {
    return g.token_at(x, y, g.tokens.empty() ? 0 : view);
}

static std::string fmt(double v, const char* f = "%.3f") {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string patch_tooltip(const dl::ImageGeometry& g, int index, const std::vector<MethodSelection>& methods) {
    std::ostringstream s;
    if (index < 0 || g.cols <= 0) return "";
    if (!g.tokens.empty()) {  // LLaVA-NeXT: say which view the token belongs to
        if (index >= int(g.tokens.size())) return "";
        const dl::TokenPlace& t = g.tokens[size_t(index)];
        s << "token " << index << " of the span: "
          << (t.view == 0 ? "base image" : t.view == 1 ? "tiles" : "image_newline") << " (row " << t.row << ", col "
          << t.col;
        if (t.view == 1)
            s << ", tile " << t.row / std::max(1, g.rows) << "," << t.col / std::max(1, g.cols);
        s << ")";
    } else {
        s << "patch " << index << " (row " << index / g.cols << ", col " << index % g.cols << ")";
    }
    const size_t i = size_t(index);
    bool have_key = false, have_fastv = false, have_dup = false;
    for (const MethodSelection& m : methods) {
        const dl::PruningResult* r = m.result;
        if (!r) continue;
        if (!have_key && i < r->key_l1.size()) {
            s << "\nkey L1 (layer " << r->layer - 1 << "): " << fmt(r->key_l1[i]);
            have_key = true;
        }
        if (!have_fastv && i < r->fastv_score.size() && r->method == "fastv") {
            s << "\nFastV score: " << fmt(r->fastv_score[i], "%.5f");
            have_fastv = true;
        }
        if (!have_dup && i < r->dup_max.size()) {
            s << "\nduplication (max cos to a pivot): " << fmt(r->dup_max[i]);
            have_dup = true;
            for (size_t p = 0; p < r->pivot_similarity.size() && p < r->pivots.size(); ++p) {
                if (i >= r->pivot_similarity[p].size()) continue;
                const dl::Pivot& pv = r->pivots[p];
                s << "\n  cos to " << pv.role << " pivot #" << pv.order << " (token " << pv.index
                  << "): " << fmt(r->pivot_similarity[p][i]);
            }
        }
    }
    // FastV scores may also come from a non-FastV result (e.g. the unpruned preview)
    if (!have_fastv)
        for (const MethodSelection& m : methods)
            if (m.result && i < m.result->fastv_score.size()) {
                s << "\nattention score: " << fmt(m.result->fastv_score[i], "%.5f");
                break;
            }
    std::string kept, dropped;
    for (const MethodSelection& m : methods) {
        if (!m.result) continue;
        const auto& k = m.result->kept_image_indices;
        const bool is_kept = m.result->method == "none" || std::binary_search(k.begin(), k.end(), index);
        const bool is_pivot = std::find(m.result->pivot_image_indices.begin(), m.result->pivot_image_indices.end(),
                                        index) != m.result->pivot_image_indices.end();
        std::string& dst = is_kept ? kept : dropped;
        dst += (dst.empty() ? "" : ", ") + m.name + (is_pivot ? " (pivot)" : "");
    }
    s << "\nkept by: " << (kept.empty() ? "none" : kept);
    if (!dropped.empty()) s << "\npruned by: " << dropped;
    return s.str();
}

}  // namespace dlui
