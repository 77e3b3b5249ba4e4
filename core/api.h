// The engine's public, torch-free API: plain structs (core/api_types.h) and one Session object
// (core/session.h).
//
// Everything the GUI (ui/) and the CLI (app/) need goes through this header. It includes no
// torch, OpenCV or Qt header, so UI translation units stay cheap to compile. A Session owns the
// model, the current image and prompt, and the prefix cache (vision features + the unpruned
// trunk), so changing a pruning parameter only re-runs what that parameter affects.
#pragma once

#include "core/api_types.h"
#include "core/session.h"
