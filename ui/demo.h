// Where the bundled demo lives: the model and the sample picture.
//
// Model: $DARTLENS_DEMO_MODEL, else <exe dir>/../demo-model, else the source tree's trained
// resources/models/dartlens-shapes (DARTLENS_SOURCE_DIR), else one generated on demand with
// make_model("tiny") into QStandardPaths::AppLocalDataLocation/demo-model. Image:
// $DARTLENS_RESOURCES/sample.jpg, else <exe dir>/../resources/sample.jpg, else the source tree's
// resources/sample.jpg (DARTLENS_SOURCE_DIR, compiled in).
#pragma once

#include <QString>

namespace dlui {

bool is_model_dir(const QString& dir);          // has a config.json
QString bundled_demo_model_dir();               // "" when neither env nor exe-relative exists
QString generated_demo_model_dir();             // AppLocalDataLocation/demo-model (may not exist)
QString sample_image_path();                    // "" when not found
// Scene 0 of the scene world's set 2026 at 336x336 (AppLocalDataLocation/demo-scenes, written on
// first use with its scenes.jsonl, so "Objects present" fills itself); "" when it cannot be written.
QString demo_scene_image();
// A drawn stand-in picture (AppLocalDataLocation/demo-picture.png) for when sample.jpg is not
// installed; "" when it cannot be written.
QString synthetic_demo_image();
// Generates the tiny demo model into `dir` (blocking; call off the GUI thread). Returns "" on
// success, else the error message.
QString generate_demo_model(const QString& dir);

}  // namespace dlui
