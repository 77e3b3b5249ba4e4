// Prompt tests: template texts as shared/specs/llava-hf.md writes them, ids equal to SentencePiece
// applied to each segment (spm_encode for the single-line part before <image>, a helper linked to
// libsentencepiece for the part after it, which starts with a newline), image span found from ids.
#include <gtest/gtest.h>

#include <sstream>

#include "core/common.h"
#include "core/model/prompt.h"
#include "core/io/tokenizer.h"
#include "test_util.h"

namespace {

std::string g_dir, g_helper;

void setup_once() {
    if (!g_dir.empty()) return;
    g_dir = dltest::scratch_dir("prompt");
    std::ostringstream corpus;
    const char* lines[] = {"A chat between a curious human and an artificial intelligence assistant.",
                           "The assistant gives helpful, detailed, and polite answers to the human's questions.",
                           "USER: What is in the image? ASSISTANT: A red ball on a table.",
                           "USER: How many cats are there? ASSISTANT: There are 2 cats.",
                           "Describe the picture in detail, please."};
    for (int rep = 0; rep < 200; ++rep)
        for (const char* l : lines) corpus << l << " " << rep << "\n";
    dltest::write_file(g_dir + "/corpus.txt", corpus.str());
    std::string out;
    int rc = dltest::run_command("cd '" + g_dir + "' && spm_train --input=corpus.txt --model_prefix=tokenizer"
                                 " --vocab_size=400 --hard_vocab_limit=false --model_type=bpe --byte_fallback=true"
                                 " --split_digits=true --normalization_rule_name=identity"
                                 " --remove_extra_whitespaces=false --num_threads=1 --minloglevel=2",
                                 &out);
    ASSERT_EQ(rc, 0) << out;
    std::string src = g_dir + "/helper.cpp";
    dltest::write_file(src,
                       "#include <sentencepiece_processor.h>\n#include <fstream>\n#include <iostream>\n"
                       "#include <sstream>\nint main(int argc, char** argv) {\n"
                       "  sentencepiece::SentencePieceProcessor sp; if (!sp.Load(argv[1]).ok()) return 2;\n"
                       "  std::ifstream f(argv[2], std::ios::binary); std::stringstream ss; ss << f.rdbuf();\n"
                       "  std::vector<int> ids; sp.Encode(ss.str(), &ids);\n"
                       "  for (size_t k = 0; k < ids.size(); ++k) std::cout << (k ? \" \" : \"\") << ids[k];\n"
                       "  std::cout << \"\\n\"; return 0; }\n");
    if (dltest::run_command("c++ -std=c++17 -O0 '" + src + "' -o '" + g_dir + "/helper' -lsentencepiece", &out) == 0)
        g_helper = g_dir + "/helper";
}

std::vector<int> parse_ids(const std::string& line) {
    std::vector<int> ids;
    std::istringstream is(line);
    int id;
    while (is >> id) ids.push_back(id);
    return ids;
}

std::vector<int> spm_encode_line(const std::string& text) {
    dltest::write_file(g_dir + "/in.txt", text + "\n");
    std::string out;
    EXPECT_EQ(dltest::run_command("spm_encode --model='" + g_dir + "/tokenizer.model' --output_format=id --input='" +
                                      g_dir + "/in.txt'",
                                  &out),
              0);
    return parse_ids(out);
}

std::vector<int> helper_encode(const std::string& text) {
    dltest::write_file(g_dir + "/in_raw.txt", text);
    std::string out;
    EXPECT_EQ(dltest::run_command("'" + g_helper + "' '" + g_dir + "/tokenizer.model' '" + g_dir + "/in_raw.txt'", &out), 0);
    return parse_ids(out);
}

const int kImage = 1000;  // beyond the SentencePiece vocabulary, as in llava-hf

}  // namespace

TEST(Prompt, TemplateTexts) {
    EXPECT_EQ(dl::prompt_text("What is this?", "llava_v1"),
              "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
              "helpful, detailed, and polite answers to the human's questions. USER: <image>\nWhat is this? ASSISTANT:");
    EXPECT_EQ(dl::prompt_text("What is this?", "llava-hf"), "USER: <image>\nWhat is this? ASSISTANT:");
    std::vector<std::string> names = dl::prompt_template_names();
    ASSERT_EQ(names.size(), 3u);
    EXPECT_EQ(names[0], "llava_v1");
    EXPECT_EQ(names[2], "mistral");
    // llava-v1.6-mistral-7b-hf's chat template
    EXPECT_EQ(dl::prompt_text("Q?", "mistral"), "[INST] <image>\nQ? [/INST]");
}

TEST(Prompt, Errors) {
    try {
        dl::prompt_text("  \t\n ", "llava_v1");
        FAIL();
    } catch (const dl::Error& e) {
        EXPECT_EQ(std::string(e.what()), "prompt: the question is empty");
    }
    EXPECT_THROW(dl::prompt_text("", "llava-hf"), dl::Error);
    try {
        dl::prompt_text("hi", "vicuna");
        FAIL();
    } catch (const dl::Error& e) {
        std::string m = e.what();
        EXPECT_NE(m.find("vicuna"), std::string::npos) << m;
        EXPECT_NE(m.find("llava_v1"), std::string::npos) << m;
        EXPECT_NE(m.find("llava-hf"), std::string::npos) << m;
    }
}

TEST(Prompt, FindImageToken) {
    EXPECT_EQ(dl::find_image_token({1, 5, 7, 32000, 9}, 32000), 3);
    EXPECT_EQ(dl::find_image_token({32000}, 32000), 0);
    EXPECT_THROW(dl::find_image_token({1, 5, 7}, 32000), dl::Error);
    EXPECT_THROW(dl::find_image_token({1, 32000, 7, 32000}, 32000), dl::Error);
    EXPECT_THROW(dl::find_image_token({}, 32000), dl::Error);
}

TEST(Prompt, IdsAreSegmentsEncodedSeparately) {
    setup_once();
    dl::Tokenizer tok = dl::Tokenizer::load_model_file(g_dir + "/tokenizer.model");
    ASSERT_LT(tok.sp_vocab_size(), kImage);
    const std::string question = "What is in the image?  Count the 12 cats.";
    struct Case {
        const char* name;
        const char* before;
    } cases[] = {{"llava_v1",
                  "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
                  "helpful, detailed, and polite answers to the human's questions. USER: "},
                 {"llava-hf", "USER: "}};
    for (const auto& c : cases) {
        dl::PromptTokens p = dl::build_prompt(tok, question, c.name, kImage, 1);
        std::vector<int> before = spm_encode_line(c.before);
        ASSERT_FALSE(before.empty());
        EXPECT_EQ(p.image_token_pos, 1 + static_cast<int>(before.size())) << c.name;
        ASSERT_GT(p.ids.size(), before.size() + 2);
        EXPECT_EQ(p.ids[0], 1);
        EXPECT_EQ(std::vector<int>(p.ids.begin() + 1, p.ids.begin() + 1 + static_cast<long>(before.size())), before);
        EXPECT_EQ(p.ids[static_cast<size_t>(p.image_token_pos)], kImage);
        EXPECT_EQ(dl::find_image_token(p.ids, kImage), p.image_token_pos);
        EXPECT_EQ(p.text, std::string(c.before) + "<image>\n" + question + " ASSISTANT:");
        std::vector<int> after(p.ids.begin() + p.image_token_pos + 1, p.ids.end());
        // The after segment starts with the dummy prefix then the newline byte: "▁", "<0x0A>".
        ASSERT_GE(after.size(), 2u);
        EXPECT_EQ(tok.piece(after[1]), "<0x0A>") << tok.piece(after[0]);
        if (!g_helper.empty()) EXPECT_EQ(after, helper_encode("\n" + question + " ASSISTANT:")) << c.name;
        // The last segment ends like spm_encode of "... ASSISTANT:" on its own line would.
        std::vector<int> tail = spm_encode_line("x ASSISTANT:");
        ASSERT_GE(tail.size(), 2u);
        std::vector<int> tail_end(tail.end() - 2, tail.end());
        EXPECT_EQ(std::vector<int>(p.ids.end() - 2, p.ids.end()), tail_end);
    }
    if (g_helper.empty()) GTEST_SKIP() << "no C++ compiler for the libsentencepiece helper; after-segment partly checked";
}

TEST(Prompt, ImageTextInQuestionIsNotASecondImage) {
    setup_once();
    dl::Tokenizer tok = dl::Tokenizer::load_model_file(g_dir + "/tokenizer.model");
    dl::PromptTokens p = dl::build_prompt(tok, "Is <image> a tag?", "llava-hf", kImage, 1);
    EXPECT_EQ(dl::find_image_token(p.ids, kImage), p.image_token_pos);
    EXPECT_THROW(dl::build_prompt(tok, " ", "llava-hf", kImage, 1), dl::Error);
    EXPECT_THROW(dl::build_prompt(tok, "hi", "nope", kImage, 1), dl::Error);
    dl::PromptTokens no_bos = dl::build_prompt(tok, "hi", "llava-hf", kImage, -1);
    EXPECT_EQ(no_bos.ids.size() + 1, dl::build_prompt(tok, "hi", "llava-hf", kImage, 1).ids.size());
}
