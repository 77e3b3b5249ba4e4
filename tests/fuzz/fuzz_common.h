// Helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.cpp): a scratch directory for the
// parsers that only take paths, the fixture directory, and a way to report a broken invariant.
// Each target catches only dl::Error, the error its parser documents for bad input; anything else
// (another exception, a sanitizer report, an abort) ends the run and libFuzzer keeps the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dlfuzz {

// A directory private to this process (mkdtemp under $TMPDIR, else /dev/shm or /tmp), removed at
// normal exit.
const std::string& scratch_dir();

// Writes `size` bytes to scratch_dir()/name, replacing the file; returns its path.
std::string write_scratch_file(const std::string& name, const uint8_t* data, size_t size);
std::string write_scratch_file(const std::string& name, const std::string& bytes);

// Removes scratch_dir()/name if it exists.
void remove_scratch_file(const std::string& name);

// tests/data/fuzz in the source tree: seed corpora, regression inputs and fixtures.
std::string data_dir();

// Prints "fuzz: <what>" and aborts: the input broke an invariant the parser promises.
[[noreturn]] void fail(const std::string& what);

}  // namespace dlfuzz
