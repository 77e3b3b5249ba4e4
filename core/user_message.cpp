// dl::user_message: the one line a person reads when something fails, and the full message.
//
// DartLens's own dl::Error messages are already one line naming the file or tensor at fault.
// LibTorch's are not: "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.69 GiB total
// capacity; ...)" followed by "Exception raised from malloc at ..." and a backtrace of dozens of
// frames. The summary keeps the first line, or replaces it with what to do where the cause is
// known (out of memory, a missing file); the details keep everything for a "Details" button.
#include "core/api.h"

#include <algorithm>
#include <cctype>
#include <new>

#include <c10/util/Exception.h>

namespace dl {

namespace {

std::string lowercase(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// The first non-empty line, trimmed, at most 300 characters.
std::string first_line(const std::string& text) {
    size_t begin = 0;
    while (begin < text.size()) {
        size_t end = text.find('\n', begin);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(begin, end - begin);
        const size_t a = line.find_first_not_of(" \t\r");
        if (a != std::string::npos) {
            line = line.substr(a, line.find_last_not_of(" \t\r") - a + 1);
            if (line.size() > 300) line = line.substr(0, 297) + "...";
            return line;
        }
        begin = end + 1;
    }
    return "";
}

// dl::Error messages about files start with the path: "PATH: cannot open image (...)". Returns
// PATH, or "" when the text before the first ": " does not look like a path.
std::string leading_path(const std::string& line) {
    const size_t colon = line.find(": ");
    if (colon == std::string::npos || colon == 0) return "";
    const std::string p = line.substr(0, colon);
    if (!contains(p, "/") && !contains(p, ".")) return "";
    if (contains(p, " ") && !contains(p, "/")) return "";
    return p;
}

}  // namespace

UserMessage user_message(const std::exception& error) {
    if (dynamic_cast<const Cancelled*>(&error)) return {"Cancelled.", ""};
    const std::string full = error.what();
    // c10::Error's what() is message + "Exception raised from ..." + backtrace.
    const auto* torch_error = dynamic_cast<const c10::Error*>(&error);
    const std::string message = torch_error ? std::string(torch_error->what_without_backtrace()) : full;
    const std::string line = first_line(message);
    const std::string low = lowercase(full);
    // The original message goes to the details whenever the summary does not say all of it.
    auto with_details = [&](std::string summary) {
        UserMessage m{std::move(summary), full};
        if (m.summary == full) m.details.clear();
        return m;
    };

    // Out of memory: the activations and the KV cache grow with the tokens, the weights with the dtype.
    const bool oom = contains(low, "out of memory") || contains(low, "can't allocate memory") ||
                     contains(low, "not enough memory") || dynamic_cast<const std::bad_alloc*>(&error);
    if (oom) {
        const bool gpu = contains(low, "cuda") || contains(low, "gpu");
        return with_details(std::string(gpu ? "The GPU ran out of memory" : "Out of memory") +
                            ": try bf16 or fewer tokens (fewer new tokens, a higher reduction ratio), or a smaller "
                            "model.");
    }

    // A missing or unreadable file: say which one.
    const std::string path = leading_path(line);
    if (!path.empty()) {
        if (contains(low, "no such file or directory") || contains(low, "tokenizer model not found"))
            return with_details("File not found: " + path + " (check the path, or open another file or model).");
        if (contains(low, ": not a directory"))
            return with_details("Not a directory: " + path + " (open a llava-hf model directory).");
        if (contains(low, "cannot open") || contains(low, "permission denied"))
            return with_details("Cannot open " + path + " (check that it exists and is readable).");
    }
    return with_details(line.empty() ? std::string("Unknown error.") : line);
}

}  // namespace dl
