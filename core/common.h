// Shared error type and small helpers used across the engine. No torch, no Qt.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace dl {

// Every engine failure is a dl::Error whose message is one line naming the file, tensor or
// parameter at fault ("model.safetensors: tensor 'x': offsets [a,b) beyond data size n").
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// str_cat("a", 1, "b") -> "a1b"; for building error messages.
template <typename... Args>
std::string str_cat(const Args&... args) {
    std::ostringstream os;
    (os << ... << args);
    return os.str();
}

}  // namespace dl
