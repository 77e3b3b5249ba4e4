// Builds the JSON report from the plain result structs (see report.h for the field contract).
#include "core/analysis/report.h"

#include <nlohmann/json.hpp>

namespace dl {

using nlohmann::json;

static json floats_or_null(const std::vector<float>& v) {
    if (v.empty()) return json(nullptr);
    return json(v);
}

static json pruning_json(const PruningResult& p, const PruneConfig& c) {
    json j;
    j["method"] = p.method;
    j["layer"] = p.layer;
    j["budget"] = p.budget;
    j["kept_count"] = p.kept_count;
    j["num_image_tokens"] = p.num_image_tokens;
    j["kept_image_indices"] = p.kept_image_indices;
    j["pivot_image_indices"] = p.pivot_image_indices;
    j["pivot_text_indices"] = p.pivot_text_indices;
    json pivots = json::array();
    for (const Pivot& pv : p.pivots) pivots.push_back({{"index", pv.index}, {"role", pv.role}, {"order", pv.order}});
    j["pivots"] = pivots;
    j["key_l1"] = floats_or_null(p.key_l1);
    j["fastv_score"] = floats_or_null(p.fastv_score);
    j["dup_max"] = floats_or_null(p.dup_max);
    j["pivot_similarity"] = p.pivot_similarity;
    j["selection_ms"] = p.selection_ms;
    j["config"] = {{"keep", c.keep}, {"ratio", c.ratio}, {"pivots_image", c.pivots_image},
                   {"pivots_text", c.pivots_text}, {"pivot_criterion", c.pivot_criterion},
                   {"pivot_order", c.pivot_order}, {"fastv_score", c.fastv_score},
                   {"dart_scores", c.dart_scores}, {"seed", c.seed}};
    return j;
}

static json run_json(const MethodRun& r, double none_prefill_ms) {
    json j;
    j["label"] = r.config.label();
    j["method"] = r.config.method;
    j["output_ids"] = r.output_ids;
    j["text"] = r.text;
    j["timing_ms"] = {{"load", r.timing_ms.load},       {"vision", r.timing_ms.vision},
                      {"prefill", r.timing_ms.prefill}, {"selection", r.timing_ms.selection},
                      {"decode", r.timing_ms.decode},   {"ttft", r.timing_ms.ttft},
                      {"total", r.timing_ms.total}};
    // true: vision and layers < K came from the prefix cache, so timing_ms is composed from the
    // per-layer times measured when it was filled rather than measured end to end by this run.
    j["from_prefix_cache"] = r.from_prefix_cache;
    j["kv_cache_bytes"] = r.kv_cache_bytes;
    j["kv_cache_allocated_bytes"] = r.kv_cache_allocated_bytes;
    j["prefill_tokens_after_pruning"] = r.prefill_tokens_after;
    j["prefill_flops"] = r.prefill_flops;
    j["decode_flops_per_token"] = r.decode_flops_per_token;
    if (none_prefill_ms > 0 && r.timing_ms.prefill > 0)
        j["prefill_speedup_vs_none"] = none_prefill_ms / r.timing_ms.prefill;
    j["pruning"] = pruning_json(r.pruning, r.config);
    j["cancelled"] = r.cancelled;
    return j;
}

std::string report_json(const ModelInfo& model, const PromptInfo& prompt, const ImageGeometry& geometry,
                        const std::vector<MethodRun>& runs, const std::string& question, int indent) {
    json j;
    j["model"] = {{"dir", model.dir},
                  {"name", model.name},
                  {"weight_dtype", model.weight_dtype},
                  {"compute_dtype", model.compute_dtype},
                  {"device", model.device},
                  {"layout", model.layout},
                  {"weight_bytes", model.weight_bytes},
                  {"num_parameters", model.num_parameters},
                  {"threads", model.threads},
                  {"random_weights", model.random_weights},
                  {"num_layers", model.num_layers},
                  {"preprocess", model.preprocess}};
    j["question"] = question;
    j["prompt_text"] = prompt.prompt_text;
    j["prompt_ids"] = prompt.prompt_ids;
    j["image_span"] = {{"start", prompt.image_span_start}, {"length", prompt.image_span_length}};
    j["sequence_length"] = prompt.sequence_length;
    j["image_grid"] = {{"rows", geometry.rows},
                       {"cols", geometry.cols},
                       {"patch_size", geometry.patch_size},
                       {"image_size", geometry.image_size},
                       {"original_width", geometry.original_width},
                       {"original_height", geometry.original_height},
                       {"mode", geometry.mode},
                       {"scale", {geometry.scale_x, geometry.scale_y}},
                       {"offset", {geometry.offset_x, geometry.offset_y}}};
    if (!geometry.tokens.empty()) {
        // LLaVA-NeXT: the chosen pinpoint and, per image token of the span, its view (0 base,
        // 1 tiles, -1 image_newline), grid place and original-pixel box
        json& g = j["image_grid"];
        g["tiles"] = {{"rows", geometry.tile_rows}, {"cols", geometry.tile_cols}};
        g["best_resolution"] = {{"width", geometry.best_width}, {"height", geometry.best_height}};
        g["resized"] = {{"width", geometry.resized_width}, {"height", geometry.resized_height},
                        {"paste_x", geometry.paste_x}, {"paste_y", geometry.paste_y}};
        json tokens = json::array();
        for (const TokenPlace& t : geometry.tokens)
            tokens.push_back({t.view, t.row, t.col, t.box.x0, t.box.y0, t.box.x1, t.box.y1});
        g["token_fields"] = {"view", "row", "col", "x0", "y0", "x1", "y1"};
        g["tokens"] = tokens;
    }
    double none_prefill = 0;
    for (const MethodRun& r : runs)
        if (r.config.method == "none") none_prefill = r.timing_ms.prefill;
    json arr = json::array();
    for (const MethodRun& r : runs) arr.push_back(run_json(r, none_prefill));
    if (runs.size() == 1) {
        for (auto it = arr[0].begin(); it != arr[0].end(); ++it) j[it.key()] = it.value();
    }
    j["runs"] = arr;
    return j.dump(indent);
}

}  // namespace dl
