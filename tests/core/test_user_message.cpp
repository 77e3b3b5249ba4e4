// dl::user_message: every engine failure becomes one line saying what to do, with the full
// message kept as details. Real exceptions where the engine can raise them cheaply (a LibTorch
// shape error, a missing image, a model directory without its tokenizer), the verbatim text of
// LibTorch's CUDA out-of-memory error otherwise (no GPU needed).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <filesystem>
#include <new>

#include "core/api.h"
#include "core/common.h"
#include "core/io/image.h"
#include "core/model/make_model.h"
#include "test_util.h"

namespace {

bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == std::string::npos; }

dl::UserMessage message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return dl::user_message(e);
    }
    ADD_FAILURE() << "expected an exception";
    return {};
}

TEST(UserMessage, CudaOutOfMemorySuggestsBf16OrFewerTokens) {
    // LibTorch 2.x's message, as c10::OutOfMemoryError's what() carries it (first line + backtrace)
    const std::string torch_text =
        "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.69 GiB total capacity; 21.90 GiB already "
        "allocated; 1.12 GiB free; 22.10 GiB reserved in total by PyTorch)\n"
        "Exception raised from malloc at ../c10/cuda/CUDACachingAllocator.cpp:913 (most recent call first):\n"
        "frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x57 (0x7f in libc10.so)\n"
        "frame #1: <unknown function> + 0x2a8c1 (0x7f in libc10_cuda.so)\n";
    const dl::UserMessage m = dl::user_message(std::runtime_error(torch_text));
    EXPECT_TRUE(one_line(m.summary)) << m.summary;
    EXPECT_NE(m.summary.find("GPU ran out of memory"), std::string::npos) << m.summary;
    EXPECT_NE(m.summary.find("bf16"), std::string::npos) << m.summary;
    EXPECT_NE(m.summary.find("fewer tokens"), std::string::npos) << m.summary;
    EXPECT_EQ(m.details, torch_text);
}

TEST(UserMessage, HostOutOfMemory) {
    const dl::UserMessage m = dl::user_message(std::bad_alloc());
    EXPECT_TRUE(one_line(m.summary));
    EXPECT_EQ(m.summary.rfind("Out of memory", 0), 0u) << m.summary;
    EXPECT_NE(m.summary.find("bf16"), std::string::npos) << m.summary;
    const dl::UserMessage cpu = dl::user_message(std::runtime_error(
        "[enforce fail at alloc_cpu.cpp:75] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to "
        "allocate 1099511627776 bytes. Error code 12 (Cannot allocate memory)"));
    EXPECT_EQ(cpu.summary.rfind("Out of memory", 0), 0u) << cpu.summary;
}

TEST(UserMessage, LibTorchErrorKeepsFirstLineAndBacktraceAsDetails) {
    const dl::UserMessage m = message_of([] { at::matmul(at::ones({2, 3}), at::ones({2, 3})); });
    EXPECT_TRUE(one_line(m.summary)) << m.summary;
    EXPECT_NE(m.summary.find("2x3"), std::string::npos) << m.summary;  // "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)"
    EXPECT_GT(m.details.size(), m.summary.size());
    EXPECT_NE(m.details.find(m.summary.substr(0, 20)), std::string::npos);
}

TEST(UserMessage, MissingImageNamesTheFile) {
    const std::string path = dltest::scratch_dir("user-message") + "/no-such-picture.png";
    const dl::UserMessage m = message_of([&] { dl::load_image_rgb8(path); });
    EXPECT_TRUE(one_line(m.summary)) << m.summary;
    EXPECT_EQ(m.summary.rfind("File not found: " + path, 0), 0u) << m.summary;
    EXPECT_NE(m.details.find("No such file or directory"), std::string::npos) << m.details;
}

TEST(UserMessage, ModelWithoutTokenizerNamesTheFile) {
    namespace fs = std::filesystem;
    const std::string dir = dltest::scratch_dir("user-message-model") + "/tiny";
    dl::make_model("tiny", dir, 1);
    fs::remove(fs::path(dir) / "tokenizer.model");
    dl::Session session;
    const dl::UserMessage m = message_of([&] { session.load_model(dir, dl::LoadOptions{}); });
    EXPECT_TRUE(one_line(m.summary)) << m.summary;
    EXPECT_NE(m.summary.find(dir + "/tokenizer.model"), std::string::npos) << m.summary;
    EXPECT_NE(m.summary.find("not found"), std::string::npos) << m.summary;
    EXPECT_FALSE(session.has_model());
}

TEST(UserMessage, OneLineEngineErrorsPassThrough) {
    const dl::UserMessage m = dl::user_message(dl::Error("prune: layer K=40 outside 1..31"));
    EXPECT_EQ(m.summary, "prune: layer K=40 outside 1..31");
    EXPECT_EQ(m.details, "");
    EXPECT_EQ(dl::user_message(dl::Cancelled()).summary, "Cancelled.");
    const dl::UserMessage multi = dl::user_message(std::runtime_error("first line\nsecond line"));
    EXPECT_EQ(multi.summary, "first line");
    EXPECT_EQ(multi.details, "first line\nsecond line");
}

}  // namespace
