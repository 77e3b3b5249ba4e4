// read_json_file, parse_int and json_int (json_util.h).
#include "core/io/json_util.h"

#include <fstream>
#include <limits>

#include "core/common.h"

namespace dl {

nlohmann::json read_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(str_cat(path, ": cannot open"));
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw Error(str_cat(path, ": not valid JSON: ", e.what()));
    }
}

namespace {

std::string out_of_range(int64_t lo, int64_t hi) { return str_cat("out of range [", lo, ", ", hi, "]"); }

}  // namespace

std::string parse_int(const std::string& text, int64_t lo, int64_t hi, int64_t* out) {
    const bool negative = !text.empty() && text[0] == '-';
    const size_t first = negative ? 1 : 0;
    if (first == text.size()) return "not a decimal integer";
    // The magnitude stays <= 2^63 (so never overflows); `beyond` marks a larger number, whose
    // remaining characters must still be digits.
    constexpr uint64_t kCap = uint64_t(1) << 63;
    uint64_t magnitude = 0;
    bool beyond = false;
    for (size_t i = first; i < text.size(); ++i) {
        const char ch = text[i];
        if (ch < '0' || ch > '9') return "not a decimal integer";
        const uint64_t digit = uint64_t(ch - '0');
        if (beyond) continue;
        if (magnitude > (kCap - digit) / 10) beyond = true;
        else magnitude = magnitude * 10 + digit;
    }
    if (beyond || (!negative && magnitude == kCap)) return out_of_range(lo, hi);
    // -2^63 is the one magnitude that has no positive int64_t.
    const int64_t value = negative ? (magnitude == kCap ? std::numeric_limits<int64_t>::min() : -int64_t(magnitude))
                                   : int64_t(magnitude);
    if (value < lo || value > hi) return out_of_range(lo, hi);
    *out = value;
    return "";
}

std::string json_int(const nlohmann::json& value, int64_t lo, int64_t hi, int64_t* out) {
    if (!value.is_number_integer()) return str_cat("expected integer, got ", value.type_name());
    if (value.is_number_unsigned()) {
        const uint64_t u = value.get<uint64_t>();
        if (hi < 0 || u > uint64_t(hi) || (lo > 0 && u < uint64_t(lo)))
            return str_cat(value.dump(), " is ", out_of_range(lo, hi));
        *out = int64_t(u);
        return "";
    }
    const int64_t s = value.get<int64_t>();
    if (s < lo || s > hi) return str_cat(value.dump(), " is ", out_of_range(lo, hi));
    *out = s;
    return "";
}

}  // namespace dl
