// Scratch files and sanitizer defaults for the libFuzzer targets (see fuzz_common.h).
#include "fuzz_common.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace fs = std::filesystem;

// Undefined behaviour is a finding, not a warning: stop at the first report, with its stack.
// Leaks stay on (libFuzzer checks them per input); scripts set ASAN_OPTIONS/UBSAN_OPTIONS too.
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

namespace dlfuzz {

namespace {

void remove_scratch_dir() {
    std::error_code ec;
    fs::remove_all(scratch_dir(), ec);
}

}  // namespace

const std::string& scratch_dir() {
    static const std::string dir = [] {
        // Memory-backed /dev/shm unless TMPDIR says otherwise: every run writes its input there.
        const char* tmp = std::getenv("TMPDIR");
        std::string base = tmp && *tmp ? tmp : (::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        std::string pattern = base + "/dartlens-fuzz-XXXXXX";
        if (!::mkdtemp(pattern.data())) fail("cannot create a scratch directory from " + pattern);
        return pattern;
    }();
    static const bool registered = (std::atexit(remove_scratch_dir), true);
    (void)registered;
    return dir;
}

std::string write_scratch_file(const std::string& name, const uint8_t* data, size_t size) {
    const std::string path = scratch_dir() + "/" + name;
    // A new file rather than a truncated one: ext4 flushes a file that was truncated and rewritten
    // to disk at close (auto_da_alloc), which made every run wait for the block device.
    ::unlink(path.c_str());
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) fail("cannot create " + path);
    const bool ok = (size == 0 || std::fwrite(data, 1, size, f) == size);
    if (std::fclose(f) != 0 || !ok) fail("cannot write " + path);
    return path;
}

std::string write_scratch_file(const std::string& name, const std::string& bytes) {
    return write_scratch_file(name, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

void remove_scratch_file(const std::string& name) {
    std::error_code ec;
    fs::remove(scratch_dir() + "/" + name, ec);
}

std::string data_dir() { return DARTLENS_FUZZ_DATA_DIR; }

void fail(const std::string& what) {
    std::fprintf(stderr, "fuzz: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

}  // namespace dlfuzz
