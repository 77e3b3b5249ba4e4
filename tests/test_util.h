// Helpers shared by the tests: where the reference data and scratch space live.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dltest {
std::string source_dir();     // the repository root
std::string sample_image();   // resources/sample.jpg, the bundled demo image
std::string reference_dir();  // tests/data/hf-llava-tiny (env DARTLENS_REFERENCE_DIR)
std::string data_dir();       // tests/data (env DARTLENS_TEST_DATA)
std::string bin_dir();        // build/bin, where dartlens-cli lives (env DARTLENS_BIN_DIR)
// A fresh, empty scratch directory unique to this test (under DARTLENS_TEST_TMP).
std::string scratch_dir(const std::string& name);
// Runs a shell command, returns its exit status; stdout+stderr captured into *output if given.
int run_command(const std::string& command, std::string* output = nullptr);
void write_file(const std::string& path, const std::string& bytes);
// The dartlens-cli of this build.
std::string cli();
// Runs `dartlens-cli ARGS` expecting failure (non-zero, no crash) with exactly one line of output
// (gtest expectations); returns that output.
std::string expect_cli_error(const std::string& args);
std::string read_file(const std::string& path);
// The JSON values of a JSON-lines file (empty lines skipped); throws on malformed lines.
std::vector<nlohmann::json> read_jsonl(const std::string& path);
}  // namespace dltest
