// JSON serialisation of run results: the CLI's --json output and the GUI's exported report.
//
// The field names are a contract (other tools and checks rely on them): prompt_ids, image_span
// {start,length}, output_ids, text, timing_ms {load,vision,prefill,decode,total,...},
// from_prefix_cache (timing_ms composed from the prefix cache's per-layer times), pruning
// {method, layer, budget, kept_count, kept_image_indices, pivot_image_indices,
// pivot_text_indices, key_l1, fastv_score, dup_max, ...}, runs [...].
#pragma once

#include <string>
#include <vector>

#include "core/api.h"

namespace dl {

// A whole report: model, prompt, geometry, and one entry per run. When there is exactly one run,
// its fields are also copied to the top level (output_ids, text, timing_ms, pruning).
std::string report_json(const ModelInfo& model, const PromptInfo& prompt, const ImageGeometry& geometry,
                        const std::vector<MethodRun>& runs, const std::string& question, int indent = 1);

}  // namespace dl
