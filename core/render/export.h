// Writing results to disk without ever silently replacing a file.
//
// write_file_atomic writes a temporary file in the target's directory, fsyncs it, then moves it
// into place: with rename() when replacing is allowed, else with link() (fails with EEXIST when
// the target exists; renameat2(RENAME_NOREPLACE) where the filesystem has no hard links), so a
// reader never sees a half-written file and an existing file is never clobbered by accident.
// export_all writes the overlays, the composite, report.json and figures.csv of a comparison,
// after checking that none of them exists (all-or-nothing when overwrite is false).
#pragma once

#include <string>
#include <vector>

#include "core/api.h"
#include "core/render/overlay.h"

namespace dl {

// Writes `bytes` to `path` atomically. If `path` exists and !overwrite: dl::Error naming it, and
// nothing is changed. Other failures (directory missing, disk full) also throw dl::Error naming
// the path; the temporary file is removed.
void write_file_atomic(const std::string& path, const std::string& bytes, bool overwrite);

struct ExportRequest {
    std::string dir;                 // created if missing
    bool overwrite = false;
    RgbImage original;               // load_image_for_display(image path)
    ImageGeometry geometry;
    std::vector<MethodRun> runs;
    std::string question;
    std::string report_json;         // written verbatim as report.json
    OverlayOptions overlay;
};

// File names export_all writes into dir, in order: overlay_<i>_<method>.png for each run (i from
// 0, method sanitised to [A-Za-z0-9_-]; LLaVA-NeXT geometry: overlay_<i>_<method>_tiles.png and
// _base.png, one per view), composite.png (in request.overlay's view), report.json, figures.csv.
std::vector<std::string> export_file_names(const ExportRequest& request);

// figures.csv text: a header row, then one row per run: method, layer, budget, kept_count,
// vision_ms, prefill_ms, selection_ms, decode_ms, ttft_ms, total_ms, speedup_vs_none (prefill of
// the first "none" run / this run's prefill; empty without a none run), kv_cache_bytes,
// output_tokens, text (RFC 4180 quoting). Milliseconds with 3 decimals.
std::string figures_csv(const std::vector<MethodRun>& runs);

// Writes every file of export_file_names into request.dir and returns their paths. With
// overwrite false, throws dl::Error naming the first file that already exists before writing
// anything.
std::vector<std::string> export_all(const ExportRequest& request);

}  // namespace dl
