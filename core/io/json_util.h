// The small JSON files of a model directory (config.json, preprocessor_config.json,
// generation_config.json, the tokenizer's added-token files): one reader whose errors name the
// file, and integer checks that neither narrow (5e9 into an int) nor half-parse ("32000abc").
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace dl {

// Parses the file at `path`; dl::Error "PATH: cannot open" or "PATH: not valid JSON: ...".
nlohmann::json read_json_file(const std::string& path);

// The whole of `text` as a decimal integer in [lo, hi]: an optional '-' then digits ("0032" is
// 32; "", " 7", "+7", "7abc", "1e3" are not integers). Returns "" and sets *out, or what is wrong
// ("not a decimal integer", "out of range [lo, hi]") for the caller to put after the key's name.
std::string parse_int(const std::string& text, int64_t lo, int64_t hi, int64_t* out);

// The same for a JSON value: an integer (not 1.0, "3" or true) in [lo, hi]. The messages read
// "expected integer, got string" and "5000000000 is out of range [lo, hi]".
std::string json_int(const nlohmann::json& value, int64_t lo, int64_t hi, int64_t* out);

}  // namespace dl
