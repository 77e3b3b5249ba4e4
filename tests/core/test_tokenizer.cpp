// Tokenizer tests: a LLaMA-like SentencePiece model trained here with Debian's spm_train, loaded
// through our dlopen()ed shim. What is checked here is behaviour with an answer known without the
// code under test: exact round trips, byte fallback spelling a character's UTF-8 bytes, control
// tokens dropped, valid UTF-8 out, added tokens, load failures naming the file and key, torch in the
// same process. Token ids are compared with an independent tokenizer elsewhere: the hf_tokenizer
// test (tests/hf/hf_oracle.py `tokenizer`) encodes its corpus with Hugging Face's tokenizer of a
// llava-hf checkpoint and with dartlens-cli tokenize, and the hf_* llava tests compare decoded answers.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>

#include "core/common.h"
#include "core/io/tokenizer.h"
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

// Whether s is well-formed UTF-8 as far as lead and continuation bytes go: no stray
// continuation byte, no cut sequence.
bool is_valid_utf8(const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        if (n == 0 || i + n > s.size() || (n == 2 && c < 0xC2)) return false;
        for (size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

// The bytes that byte-fallback pieces ("<0xF0>") of ids spell, in order; other pieces are skipped.
std::string fallback_bytes(const dl::Tokenizer& tok, const std::vector<int>& ids) {
    std::string bytes;
    for (int id : ids) {
        const std::string p = tok.piece(id);
        if (p.size() == 6 && p.rfind("<0x", 0) == 0 && p.back() == '>')
            bytes += static_cast<char>(std::stoi(p.substr(3, 2), nullptr, 16));
    }
    return bytes;
}

// Texts of many kinds; those with newlines are added where needed.
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
        "\xE2\x96\x81" "already has a meta space",
    };
}

}  // namespace

class TokenizerTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { train_model(); }
};

TEST_F(TokenizerTest, ByteFallbackSpellsTheUtf8Bytes) {
    // Characters the training corpus never saw are encoded as their UTF-8 bytes, in order.
    ASSERT_FALSE(g_model.empty());
    dl::Tokenizer tok = dl::Tokenizer::load_model_file(g_model);
    EXPECT_EQ(fallback_bytes(tok, tok.encode("\xF0\x9F\x98\x80")), "\xF0\x9F\x98\x80");  // U+1F600
    EXPECT_EQ(fallback_bytes(tok, tok.encode("a\nb")), "\n");  // no newline piece: spm_train reads lines
    EXPECT_EQ(fallback_bytes(tok, tok.encode("the 饕餮 table")), "饕餮");
    int byte_pieces = 0;
    for (const std::string& text : single_line_corpus())
        for (int id : tok.encode(text)) byte_pieces += tok.piece(id).rfind("<0x", 0) == 0;
    EXPECT_GT(byte_pieces, 10) << "the corpus should exercise byte fallback (emoji, rare CJK)";
    EXPECT_TRUE(tok.encode("").empty());
}

TEST_F(TokenizerTest, DecodeDropsControlsAndJoinsBytes) {
    ASSERT_FALSE(g_model.empty());
    dl::Tokenizer tok = dl::Tokenizer::load_model_file(g_model);
    const int b_e2 = tok.piece_to_id("<0xE2>"), b_82 = tok.piece_to_id("<0x82>"), b_ac = tok.piece_to_id("<0xAC>");
    const int b_80 = tok.piece_to_id("<0x80>");
    ASSERT_GE(b_e2, 3);
    ASSERT_GE(b_ac, 3);
    std::vector<int> hello = tok.encode("hello world");
    EXPECT_EQ(tok.decode(hello), "hello world");
    // bos/eos are control pieces: dropped (HF skip_special_tokens=True).
    std::vector<int> with_controls = {tok.bos_id()};
    with_controls.insert(with_controls.end(), hello.begin(), hello.end());
    with_controls.push_back(tok.eos_id());
    EXPECT_EQ(tok.decode(with_controls), "hello world");
    // E2 82 AC is the UTF-8 of U+20AC, whichever pieces carry the bytes.
    EXPECT_EQ(tok.decode({b_e2, b_82, b_ac}), "\xE2\x82\xAC");
    std::vector<int> euro_then_world = {b_e2, b_82, b_ac};
    std::vector<int> world = tok.encode("world");
    euro_then_world.insert(euro_then_world.end(), world.begin(), world.end());
    EXPECT_EQ(tok.decode(euro_then_world), "\xE2\x82\xAC world");
    // A lone continuation byte and a cut sequence are not valid UTF-8: the output still is, with
    // U+FFFD in their place and the text around kept.
    for (const std::vector<int>& bad : {std::vector<int>{hello[0], b_80, hello.back()},
                                        std::vector<int>{hello[0], b_e2, b_82}, std::vector<int>{b_82}}) {
        const std::string text = tok.decode(bad);
        EXPECT_TRUE(is_valid_utf8(text)) << text;
        EXPECT_NE(text.find("\xEF\xBF\xBD"), std::string::npos) << text;
        if (bad.size() == 3) {
            EXPECT_EQ(text.rfind(tok.decode({hello[0]}), 0), 0u) << text;
        }
    }
}

TEST_F(TokenizerTest, RoundTripIsExact) {
    // Identity normalisation and no whitespace removal: decode(encode(t)) == t, newlines included.
    ASSERT_FALSE(g_model.empty());
    dl::Tokenizer tok = dl::Tokenizer::load_model_file(g_model);
    auto texts = single_line_corpus();
    for (const char* t : {"line one\nline two\n\nline four\n", "\n", "\nstarts with a newline",
                          "USER: \nWhat is in the image? ASSISTANT:", "a\n\n\nb", "tabs\tand\nnewlines\r\nand CR",
                          "emoji \xF0\x9F\x98\x80\n\xE6\x97\xA5\xE6\x9C\xAC\n"})
        texts.push_back(t);
    for (const auto& t : texts) {
        if (t == "\xE2\x96\x81" "already has a meta space") continue;  // "▁" decodes to a space
        EXPECT_EQ(tok.decode(tok.encode(t)), t);
    }
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
    EXPECT_EQ(tok.decode(mixed), tok.decode(joined));
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
    std::vector<std::vector<int>> expected;  // one thread's answers; the others must give the same
    for (const auto& text : texts) expected.push_back(tok.encode(text));
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
// with the file and the token or key in the message. (std::stoi took "32000abc" as 32000 and
// " 7" as 7; int narrowing took 2^32 + 5 as 5; an added id of INT_MAX overflowed vocab_size().)
TEST(TokenizerLoad, BadTokenIdsNameFileAndKey) {
    train_model();
    ASSERT_FALSE(g_model.empty());
    const int n = dl::Tokenizer::load_model_file(g_model).sp_vocab_size();
    const std::string next = std::to_string(n);  // the first id an added token may take
    auto decoder = [](const std::string& key) {
        return "{\"added_tokens_decoder\": {\"" + key + "\": {\"content\": \"<image>\"}}}";
    };
    struct Case { std::string file, json, needle; };
    const Case cases[] = {
        {"tokenizer_config.json", decoder(next + "abc"), "key '" + next + "abc' is not a token id"},
        {"tokenizer_config.json", decoder("32000abc"), "'32000abc'"},
        {"tokenizer_config.json", decoder(" 7"), "' 7'"},
        {"tokenizer_config.json", decoder("+7"), "'+7'"},
        {"tokenizer_config.json", decoder("1e3"), "'1e3'"},
        {"tokenizer_config.json", decoder(""), "key ''"},
        {"tokenizer_config.json", decoder("-3"), "'-3'"},
        {"tokenizer_config.json", decoder("99999999999"), "'99999999999'"},
        {"tokenizer_config.json", decoder("1099511627776"), "'1099511627776' is not a token id: out of range"},  // 2^40
        {"tokenizer_config.json", decoder("4294967296" + std::string(30, '7')), "out of range"},  // beyond int64
        {"tokenizer_config.json", decoder("2147483647"), "out of range"},  // vocab_size() would be 2^31
        {"added_tokens.json", "{\"<image>\": 4294967296}", "token '<image>': 4294967296 is out of range"},
        {"added_tokens.json", "{\"<image>\": 1099511627776}", "token '<image>'"},  // 2^40
        {"added_tokens.json", "{\"<image>\": 4294967301}", "token '<image>'"},     // 2^32 + 5, not 5
        {"added_tokens.json", "{\"<big>\": 2147483647}", "token '<big>'"},
        {"added_tokens.json", "{\"<image>\": -1}", "token '<image>'"},
        {"added_tokens.json", "{\"<image>\": 1.5}", "expected integer"},
        {"added_tokens.json", "{\"<image>\": \"" + next + "\"}", "expected integer, got string"},
        // In range for an int, but not the next id after the SentencePiece pieces: no such token.
        {"added_tokens.json", "{\"<image>\": " + std::to_string(n + 1) + "}", "outside the vocabulary"},
        {"added_tokens.json", "{\"<image>\": " + next + ", \"<pad>\": 40000}", "token '<pad>': id 40000 is outside"},
        {"tokenizer_config.json", decoder("2000000000"), "key '2000000000': id 2000000000 is outside the vocabulary"},
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
            EXPECT_NE(std::string(e.what()).find(dir + "/" + c.file + ": "), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find(c.needle), std::string::npos) << c.needle << " not in: " << e.what();
        }
    }
    // The same ids written correctly load: n and n + 1, from either file ("0032"-style keys too).
    std::string dir = dltest::scratch_dir("tokenizer-good-ids");
    fs::copy_file(g_model, dir + "/tokenizer.model", fs::copy_options::overwrite_existing);
    dltest::write_file(dir + "/added_tokens.json", "{\"<image>\": " + next + "}");
    dltest::write_file(dir + "/tokenizer_config.json",
                       "{\"added_tokens_decoder\": {\"0" + std::to_string(n + 1) + "\": {\"content\": \"<pad>\"}}}");
    dl::Tokenizer tok = dl::Tokenizer::load(dir);
    EXPECT_EQ(tok.image_token_id(), n);
    EXPECT_EQ(tok.piece_to_id("<pad>"), n + 1);
    EXPECT_EQ(tok.vocab_size(), n + 2);
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
