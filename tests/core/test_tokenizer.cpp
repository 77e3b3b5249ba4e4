// Tokenizer tests: a LLaMA-like SentencePiece model trained here with Debian's spm_train, then
// our dlopen()ed tokenizer compared token for token with Debian's spm_encode / spm_decode (and,
// for texts with newlines, which those line-based tools cannot take, with a helper compiled here
// against libsentencepiece directly). Also: added tokens, load failures, torch in the same process.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>

#include "core/common.h"
#include "core/tokenizer.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

std::string g_dir;       // scratch dir holding the trained model
std::string g_model;     // g_dir/tokenizer.model

// A corpus with ASCII prose, digits, punctuation, accents and some CJK, so that common pieces
// merge while rare characters (and all emoji) are left to byte fallback.
std::string make_corpus() {
    const char* subjects[] = {"the red ball", "a small dog", "two cats", "the blue car", "a tall tree",
                              "three birds", "the green apple", "a wooden chair", "the white cup",
                              "four people", "le café", "une crème brûlée", "el niño", "Zürich"};
    const char* verbs[] = {"is next to", "sits on", "is behind", "is in front of", "is left of",
                           "is under", "is above", "looks at"};
    const char* objects[] = {"the table", "a box", "the window", "the bed", "a yellow flower",
                             "the door", "a black bag", "the road", "la fenêtre", "the naïve résumé"};
    std::mt19937 rng(7);
    std::ostringstream os;
    for (int i = 0; i < 1500; ++i) {
        std::string s = subjects[rng() % 14];
        os << s << " " << verbs[rng() % 8] << " " << objects[rng() % 10];
        switch (rng() % 5) {
            case 0: os << ", and there are " << rng() % 1000 << " items."; break;
            case 1: os << "? Yes! (" << rng() % 100 << "%)"; break;
            case 2: os << "; it costs $" << rng() % 50 << "." << rng() % 100; break;
            case 3: os << " — 日本語のテキストです。"; break;
            default: os << "."; break;
        }
        os << "\n";
    }
    os << "中文文本和更多的字。\n日本の写真には猫がいます。\n";
    return os.str();
}

void train_model() {
    if (!g_model.empty()) return;
    g_dir = dltest::scratch_dir("tokenizer");
    dltest::write_file(g_dir + "/corpus.txt", make_corpus());
    std::string out;
    std::string cmd = "cd '" + g_dir + "' && spm_train --input=corpus.txt --model_prefix=tokenizer"
                      " --vocab_size=600 --hard_vocab_limit=false --model_type=bpe --byte_fallback=true"
                      " --split_digits=true --normalization_rule_name=identity --add_dummy_prefix=true"
                      " --remove_extra_whitespaces=false --allow_whitespace_only_pieces=true"
                      " --character_coverage=0.995 --num_threads=1 --minloglevel=2";
    int rc = dltest::run_command(cmd, &out);
    ASSERT_EQ(rc, 0) << "spm_train failed (apt-get install sentencepiece):\n" << out;
    g_model = g_dir + "/tokenizer.model";
}

std::vector<std::vector<int>> parse_id_lines(const std::string& text) {
    std::vector<std::vector<int>> out;
    std::istringstream is(text);
    std::string line;
    while (std::getline(is, line)) {
        std::vector<int> ids;
        std::istringstream ls(line);
        int id;
        while (ls >> id) ids.push_back(id);
        out.push_back(ids);
    }
    return out;
}

// Debian's spm_encode --output_format=id, one line per text.
std::vector<std::vector<int>> spm_encode_lines(const std::vector<std::string>& texts) {
    std::string input;
    for (const auto& t : texts) input += t + "\n";
    dltest::write_file(g_dir + "/enc_in.txt", input);
    std::string out;
    int rc = dltest::run_command("spm_encode --model='" + g_model + "' --output_format=id --input='" + g_dir +
                                     "/enc_in.txt' --output='" + g_dir + "/enc_out.txt'",
                                 &out);
    EXPECT_EQ(rc, 0) << out;
    return parse_id_lines(dltest::read_file(g_dir + "/enc_out.txt"));
}

std::vector<std::string> spm_decode_lines(const std::vector<std::vector<int>>& id_lists) {
    std::string input;
    for (const auto& ids : id_lists) {
        for (size_t i = 0; i < ids.size(); ++i) input += (i ? " " : "") + std::to_string(ids[i]);
        input += "\n";
    }
    dltest::write_file(g_dir + "/dec_in.txt", input);
    std::string out;
    int rc = dltest::run_command("spm_decode --model='" + g_model + "' --input_format=id --input='" + g_dir +
                                     "/dec_in.txt' --output='" + g_dir + "/dec_out.txt'",
                                 &out);
    EXPECT_EQ(rc, 0) << out;
    std::vector<std::string> lines;
    std::istringstream is(dltest::read_file(g_dir + "/dec_out.txt"));
    std::string line;
    while (std::getline(is, line)) lines.push_back(line);
    return lines;
}

// Texts on one line each (spm_encode reads lines): no '\n' here.
std::vector<std::string> single_line_corpus() {
    return {
        "The red ball is next to the table.",
        "Hello world",
        "hello",
        " leading space",
        "   three leading spaces",
        "trailing space ",
        "trailing spaces   ",
        "multiple   internal    spaces",
        "tab\tseparated\tvalues",
        "\tleading tab",
        "digits 1234567890 and 3.14159 and 007",
        "punctuation: !@#$%^&*()_+-=[]{};':\",./<>?`~",
        "accents: café naïve résumé Zürich señor crème brûlée",
        "CJK: 日本語のテキストです。中文文本",
        "rare CJK: 鬱 龘 饕餮",
        "emoji: 😀 🐈‍⬛ 👍🏽 🇫🇷",
        "mixed😀text日本abc123",
        "Ω≈ç√∫˜µ≤≥÷ ¡™£¢∞§¶•ªº",
        "x",
        " ",
        "  ",
        "<s> </s> <unk> <image> look like special tokens but are text",
        "ASSISTANT: USER: A chat between a curious human and an artificial intelligence assistant.",
        "\xE2\x96\x81already has a meta space",
    };
}

}  // namespace

class TokenizerTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { train_model(); }
};

TEST_F(TokenizerTest, EncodeMatchesSpmEncode) {
    ASSERT_FALSE(g_model.empty());
    dl::Tokenizer tok = dl::Tokenizer::load_model_file(g_model);
    auto texts = single_line_corpus();
    auto expected = spm_encode_lines(texts);
    ASSERT_EQ(expected.size(), texts.size());
    int byte_pieces = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
        std::vector<int> ids = tok.encode(texts[i]);
        EXPECT_EQ(ids, expected[i]) << "text: '" << texts[i] << "'";
        for (int id : ids) byte_pieces += tok.piece(id).rfind("<0x", 0) == 0;
    }
    EXPECT_GT(byte_pieces, 10) << "the corpus should exercise byte fallback (emoji, rare CJK)";
    EXPECT_TRUE(tok.encode("").empty());
}

TEST_F(TokenizerTest, DecodeMatchesSpmDecode) {
    ASSERT_FALSE(g_model.empty());
    dl::Tokenizer tok = dl::Tokenizer::load_model_file(g_model);
    auto texts = single_line_corpus();
    auto encoded = spm_encode_lines(texts);
    std::vector<std::vector<int>> id_lists;
    for (const auto& ids : encoded)
        if (!ids.empty()) id_lists.push_back(ids);
    // Control ids inside, a lone continuation byte (invalid UTF-8), a cut multi-byte sequence.
    int b_e2 = tok.piece_to_id("<0xE2>"), b_82 = tok.piece_to_id("<0x82>"), b_80 = tok.piece_to_id("<0x80>");
    ASSERT_GE(b_e2, 3);
    std::vector<int> hello = tok.encode("hello world");
    std::vector<int> with_controls = {tok.bos_id()};
    with_controls.insert(with_controls.end(), hello.begin(), hello.end());
    with_controls.push_back(tok.eos_id());
    id_lists.push_back(with_controls);
    id_lists.push_back({hello[0], b_80, hello.back()});
    id_lists.push_back({hello[0], b_e2, b_82});
    id_lists.push_back({b_e2, b_82, b_80, hello.back()});  // "€" from bytes
    auto expected = spm_decode_lines(id_lists);
    ASSERT_EQ(expected.size(), id_lists.size());
    for (size_t i = 0; i < id_lists.size(); ++i) EXPECT_EQ(tok.decode(id_lists[i]), expected[i]) << "line " << i;
}

TEST_F(TokenizerTest, RoundTripIsExact) {
    // Identity normalisation and no whitespace removal: decode(encode(t)) == t, newlines included.
    ASSERT_FALSE(g_model.empty());
    dl::Tokenizer tok = dl::Tokenizer::load_model_file(g_model);
    auto texts = single_line_corpus();
    texts.push_back("line one\nline two\n\nline four\n");
    texts.push_back("\n");
    texts.push_back("\nstarts with a newline");
    for (const auto& t : texts) {
        if (t == "\xE2\x96\x81already has a meta space") continue;  // "▁" decodes to a space
        EXPECT_EQ(tok.decode(tok.encode(t)), t);
    }
}

TEST_F(TokenizerTest, NewlinesMatchLibSentencepiece) {
    // spm_encode is line based, so texts with '\n' go through a helper linked to libsentencepiece.
    ASSERT_FALSE(g_model.empty());
    std::string src = g_dir + "/encode_helper.cpp", exe = g_dir + "/encode_helper";
    dltest::write_file(src,
                       "#include <sentencepiece_processor.h>\n#include <fstream>\n#include <iostream>\n"
                       "#include <sstream>\nint main(int argc, char** argv) {\n"
                       "  sentencepiece::SentencePieceProcessor sp; if (!sp.Load(argv[1]).ok()) return 2;\n"
                       "  for (int i = 2; i < argc; ++i) { std::ifstream f(argv[i], std::ios::binary);\n"
                       "    std::stringstream ss; ss << f.rdbuf(); std::vector<int> ids; sp.Encode(ss.str(), &ids);\n"
                       "    for (size_t k = 0; k < ids.size(); ++k) std::cout << (k ? \" \" : \"\") << ids[k];\n"
                       "    std::cout << \"\\n\"; }\n  return 0; }\n");
    std::string out;
    if (dltest::run_command("c++ -std=c++17 -O0 '" + src + "' -o '" + exe + "' -lsentencepiece", &out) != 0)
        GTEST_SKIP() << "cannot compile a libsentencepiece helper: " << out;
    std::vector<std::string> texts = {
        "line one\nline two",
        "USER: \nWhat is in the image? ASSISTANT:",
        "\nWhat colour is the ball?",
        "a\n\n\nb",
        "trailing newline\n",
        "\n",
        "tabs\tand\nnewlines\r\nand CR",
        "emoji 😀\n日本語\n",
    };
    std::string args;
    for (size_t i = 0; i < texts.size(); ++i) {
        std::string p = g_dir + "/nl_" + std::to_string(i) + ".txt";
        dltest::write_file(p, texts[i]);
        args += " '" + p + "'";
    }
    ASSERT_EQ(dltest::run_command("'" + exe + "' '" + g_model + "'" + args, &out), 0) << out;
    auto expected = parse_id_lines(out);
    ASSERT_EQ(expected.size(), texts.size());
    dl::Tokenizer tok = dl::Tokenizer::load_model_file(g_model);
    for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(tok.encode(texts[i]), expected[i]) << "text #" << i;
    // A newline is not in the vocabulary (spm_train reads lines), so it is byte <0x0A>.
    std::vector<int> ids = tok.encode("a\nb");
    EXPECT_NE(std::find(ids.begin(), ids.end(), tok.piece_to_id("<0x0A>")), ids.end());
}

TEST_F(TokenizerTest, AddedTokensAndSpecials) {
    ASSERT_FALSE(g_model.empty());
    std::string dir = dltest::scratch_dir("tokenizer-added");
    fs::copy_file(g_model, dir + "/tokenizer.model");
    dl::Tokenizer plain = dl::Tokenizer::load_model_file(g_model);
    int n = plain.sp_vocab_size();
    ASSERT_GT(n, 300);
    std::string image = std::to_string(n), pad = std::to_string(n + 1);
    dltest::write_file(dir + "/added_tokens.json", "{\"<image>\": " + image + ", \"<pad>\": " + pad + "}");
    dltest::write_file(dir + "/tokenizer_config.json",
                       "{\"added_tokens_decoder\": {\"0\": {\"content\": \"<unk>\", \"special\": true},"
                       "\"" + image + "\": {\"content\": \"<image>\", \"special\": true},"
                       "\"" + pad + "\": {\"content\": \"<pad>\", \"special\": true}},"
                       "\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}");
    dltest::write_file(dir + "/special_tokens_map.json",
                       "{\"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"</s>\", \"pad_token\": \"<pad>\","
                       " \"unk_token\": \"<unk>\"}");
    dl::Tokenizer tok = dl::Tokenizer::load(dir);
    EXPECT_EQ(tok.sp_vocab_size(), n);
    EXPECT_EQ(tok.vocab_size(), n + 2);
    EXPECT_EQ(tok.image_token_id(), n);
    EXPECT_EQ(tok.pad_id(), n + 1);
    EXPECT_EQ(tok.bos_id(), 1);
    EXPECT_EQ(tok.eos_id(), 2);
    EXPECT_EQ(tok.unk_id(), 0);
    EXPECT_EQ(tok.piece(n), "<image>");
    EXPECT_EQ(tok.piece(1), "<s>");
    EXPECT_EQ(tok.piece_to_id("<pad>"), n + 1);
    EXPECT_EQ(tok.piece_to_id("no such piece at all"), -1);
    EXPECT_TRUE(tok.is_special(n));
    EXPECT_TRUE(tok.is_special(1));
    EXPECT_FALSE(tok.is_special(tok.encode("the")[0]));
    // Encoding is plain SentencePiece: "<image>" in text is not the added token.
    std::vector<int> ids = tok.encode("<image>");
    EXPECT_EQ(std::find(ids.begin(), ids.end(), n), ids.end());
    // decode skips bos/eos/image/pad (HF skip_special_tokens=True).
    std::vector<int> a = tok.encode("the red ball"), b = tok.encode("is next to");
    std::vector<int> mixed = {1};
    mixed.insert(mixed.end(), a.begin(), a.end());
    mixed.push_back(n);
    mixed.insert(mixed.end(), b.begin(), b.end());
    mixed.push_back(n + 1);
    mixed.push_back(2);
    std::vector<int> joined = a;
    joined.insert(joined.end(), b.begin(), b.end());
    EXPECT_EQ(tok.decode(mixed), spm_decode_lines({joined})[0]);
    EXPECT_EQ(tok.decode(mixed), "the red ball is next to");
    EXPECT_EQ(tok.decode({n + 2, 40000}), "");  // embedding padding rows decode to nothing
    EXPECT_THROW(tok.decode({-1}), dl::Error);
    EXPECT_THROW(tok.piece(-1), dl::Error);
}

TEST_F(TokenizerTest, DecodeSuffixStreams) {
    ASSERT_FALSE(g_model.empty());
    dl::Tokenizer tok = dl::Tokenizer::load_model_file(g_model);
    std::string text = "The cat 😀 sits on the 日本 table.";
    std::vector<int> ids = tok.encode(text);
    std::string streamed;
    for (size_t i = 0; i < ids.size(); ++i) {
        std::vector<int> prefix(ids.begin(), ids.begin() + static_cast<long>(i) + 1);
        // The caller re-asks from the count of ids whose text it has completely shown.
        streamed = tok.decode_suffix(prefix, 0);
        EXPECT_EQ(streamed.find("\xEF\xBF\xBD"), std::string::npos) << "no replacement char mid-stream";
    }
    EXPECT_EQ(streamed, text);
    EXPECT_EQ(tok.decode_suffix(ids, 2), text.substr(tok.decode({ids[0], ids[1]}).size()));
}

TEST_F(TokenizerTest, ConcurrentEncode) {
    ASSERT_FALSE(g_model.empty());
    dl::Tokenizer tok = dl::Tokenizer::load_model_file(g_model);
    auto texts = single_line_corpus();
    auto expected = spm_encode_lines(texts);
    std::vector<std::thread> threads;
    std::vector<int> failures(4, 0);
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            dl::Tokenizer copy = tok;
            for (int rep = 0; rep < 20; ++rep)
                for (size_t i = 0; i < texts.size(); ++i) failures[t] += copy.encode(texts[i]) != expected[i];
        });
    for (auto& th : threads) th.join();
    for (int f : failures) EXPECT_EQ(f, 0);
}

TEST_F(TokenizerTest, TorchAndTokenizerShareTheProcess) {
    ASSERT_FALSE(g_model.empty());
    at::Tensor a = at::arange(12, at::kFloat).reshape({3, 4});
    at::Tensor before = at::matmul(a, a.t());
    dl::Tokenizer tok = dl::Tokenizer::load_model_file(g_model);
    std::vector<int> ids = tok.encode("The red ball is next to the table.");
    at::Tensor t = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()));
    at::Tensor after = at::matmul(a, a.t());
    EXPECT_TRUE(at::equal(before, after));
    EXPECT_EQ(t.size(0), static_cast<int64_t>(ids.size()));
    EXPECT_FLOAT_EQ(after[2][2].item<float>(), 8 * 8 + 9 * 9 + 10 * 10 + 11 * 11);
}

TEST(TokenizerLoad, MissingModelNamesTheFile) {
    std::string dir = dltest::scratch_dir("tokenizer-missing");
    try {
        dl::Tokenizer::load(dir);
        FAIL() << "expected dl::Error";
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find(dir + "/tokenizer.model"), std::string::npos) << e.what();
    }
}

TEST(TokenizerLoad, CorruptModelNamesTheFile) {
    std::string dir = dltest::scratch_dir("tokenizer-corrupt");
    std::string path = dir + "/tokenizer.model";
    std::mt19937 rng(3);
    std::string random_bytes(4096, '\0');
    for (auto& c : random_bytes) c = static_cast<char>(rng() & 0xFF);
    std::vector<std::string> contents = {"", random_bytes, "not a protobuf at all\n", std::string(64, '\xFF')};
    // A real model cut in half.
    train_model();
    if (!g_model.empty()) {
        std::string real = dltest::read_file(g_model);
        contents.push_back(real.substr(0, real.size() / 2));
    }
    for (size_t i = 0; i < contents.size(); ++i) {
        dltest::write_file(path, contents[i]);
        try {
            dl::Tokenizer::load(dir);
            ADD_FAILURE() << "expected dl::Error for corrupt content #" << i;
        } catch (const dl::Error& e) {
            EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        }
    }
}

TEST(TokenizerLoad, CorruptAddedTokensNamesTheFile) {
    train_model();
    ASSERT_FALSE(g_model.empty());
    std::string dir = dltest::scratch_dir("tokenizer-bad-json");
    fs::copy_file(g_model, dir + "/tokenizer.model");
    dltest::write_file(dir + "/added_tokens.json", "{\"<image>\": ");
    try {
        dl::Tokenizer::load(dir);
        FAIL() << "expected dl::Error";
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find("added_tokens.json"), std::string::npos) << e.what();
    }
}

// Token ids in the JSON files are checked, not narrowed or half-parsed: each bad value is refused
// with the file and the key in the message.
TEST(TokenizerLoad, BadTokenIdsNameFileAndKey) {
    train_model();
    ASSERT_FALSE(g_model.empty());
    struct Case { const char* file; const char* json; const char* needle; };
    const Case cases[] = {
        {"tokenizer_config.json", "{\"added_tokens_decoder\": {\"32000abc\": {\"content\": \"<image>\"}}}", "32000abc"},
        {"tokenizer_config.json", "{\"added_tokens_decoder\": {\" 7\": {\"content\": \"<image>\"}}}", "' 7'"},
        {"tokenizer_config.json", "{\"added_tokens_decoder\": {\"-3\": {\"content\": \"<image>\"}}}", "-3"},
        {"tokenizer_config.json", "{\"added_tokens_decoder\": {\"99999999999\": {\"content\": \"<image>\"}}}", "99999999999"},
        {"added_tokens.json", "{\"<image>\": 4294967296}", "<image>"},
        {"added_tokens.json", "{\"<image>\": -1}", "<image>"},
        {"added_tokens.json", "{\"<image>\": 1.5}", "<image>"},
    };
    int k = 0;
    for (const Case& c : cases) {
        std::string dir = dltest::scratch_dir(dl::str_cat("tokenizer-bad-id-", k++));
        fs::copy_file(g_model, dir + "/tokenizer.model", fs::copy_options::overwrite_existing);
        dltest::write_file(dir + "/" + c.file, c.json);
        try {
            dl::Tokenizer::load(dir);
            ADD_FAILURE() << "expected dl::Error for " << c.json;
        } catch (const dl::Error& e) {
            EXPECT_NE(std::string(e.what()).find(c.file), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find(c.needle), std::string::npos) << e.what();
        }
    }
}

TEST(TokenizerLoad, ShimLookupHonoursEnvironment) {
    std::string found = dl::find_spm_shim();
    EXPECT_TRUE(fs::is_regular_file(found)) << found;
    ::setenv("DARTLENS_SPM_SHIM", "/nonexistent/libdartlens_spm.so", 1);
    EXPECT_THROW(dl::find_spm_shim(), dl::Error);
    ::setenv("DARTLENS_SPM_SHIM", fs::path(found).parent_path().c_str(), 1);
    EXPECT_EQ(fs::path(dl::find_spm_shim()).filename(), fs::path(found).filename());
    ::unsetenv("DARTLENS_SPM_SHIM");
}
