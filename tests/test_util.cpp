#include "test_util.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace dltest {

static std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

#ifndef DARTLENS_TEST_SOURCE_DIR
#define DARTLENS_TEST_SOURCE_DIR "."
#define DARTLENS_TEST_BINARY_DIR "build"
#endif

std::string source_dir() { return DARTLENS_TEST_SOURCE_DIR; }
std::string reference_dir() { return env_or("DARTLENS_REFERENCE_DIR", source_dir() + "/tests/data/hf-llava-tiny"); }
std::string data_dir() { return env_or("DARTLENS_TEST_DATA", source_dir() + "/tests/data"); }
std::string bin_dir() { return env_or("DARTLENS_BIN_DIR", std::string(DARTLENS_TEST_BINARY_DIR) + "/bin"); }
std::string sample_image() { return source_dir() + "/resources/sample.jpg"; }

std::string scratch_dir(const std::string& name) {
    fs::path root = env_or("DARTLENS_TEST_TMP", std::string(DARTLENS_TEST_BINARY_DIR) + "/test-tmp");
    fs::path dir = root / (name + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir.string();
}

int run_command(const std::string& command, std::string* output) {
    std::string cmd = command + " 2>&1";
    FILE* pipe = ::popen(cmd.c_str(), "r");
    if (!pipe) throw std::runtime_error("popen failed: " + command);
    std::array<char, 4096> buf;
    std::string out;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
    int status = ::pclose(pipe);
    if (output) *output = out;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string cli() { return bin_dir() + "/dartlens-cli"; }

std::string expect_cli_error(const std::string& args) {
    std::string out;
    const int rc = run_command(cli() + " " + args, &out);
    EXPECT_NE(rc, 0) << args;
    EXPECT_LT(rc, 128) << "crashed: " << args << "\n" << out;
    size_t lines = 0;
    for (char ch : out) lines += ch == '\n';
    EXPECT_EQ(lines, 1u) << out;
    return out;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
    std::vector<nlohmann::json> out;
    std::istringstream in(read_file(path));
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    return out;
}

}  // namespace dltest
