// fuzz_tokenizer: the Hugging Face added-token files as Tokenizer::load reads them, next to a fixed
// small SentencePiece model (tests/data/fuzz/fuzz_tokenizer_model/seed-unigram120.model: the smallest
// seed, as the model is loaded again on every run).
// Input: up to three NUL-separated parts, written as added_tokens.json, tokenizer_config.json and
// special_tokens_map.json; an absent or empty part means the file does not exist. (tokenizer.json
// is not read by core/io/tokenizer.cpp.) A loaded tokenizer must then answer every query on its ids.
#include <filesystem>
#include <vector>

#include "core/common.h"
#include "core/io/tokenizer.h"
#include "fuzz_common.h"

namespace {

const char* const k_files[] = {"added_tokens.json", "tokenizer_config.json", "special_tokens_map.json"};

const bool g_fixture = [] {
    std::filesystem::copy_file(dlfuzz::data_dir() + "/fuzz_tokenizer_model/seed-unigram120.model",
                               dlfuzz::scratch_dir() + "/tokenizer.model",
                               std::filesystem::copy_options::overwrite_existing);
    return true;
}();

void exercise(const dl::Tokenizer& tok) {
    std::vector<int> ids = {tok.bos_id(), tok.eos_id(), tok.unk_id(), tok.pad_id(), tok.image_token_id(),
                            tok.sp_vocab_size() - 1, tok.sp_vocab_size(), tok.vocab_size() - 1};
    for (const auto& [id, added] : tok.added_tokens()) {
        ids.push_back(id);
        if (tok.piece(id) != added.content) dlfuzz::fail("piece() of an added token is not its content");
        const int back = tok.piece_to_id(added.content);
        if (back < 0) dlfuzz::fail("piece_to_id() does not know added token '" + added.content + "'");
        (void)tok.is_special(id);
    }
    std::vector<int> valid;
    for (int id : ids)
        if (id >= 0) valid.push_back(id);
    (void)tok.decode(valid);
    (void)tok.decode_suffix(valid, valid.size() / 2);
    std::vector<int> text = tok.encode("a red ball <image> \xC3\xA9 \xF0\x9F\x90\x88\n");
    text.insert(text.begin() + long(text.size() / 2), valid.begin(), valid.end());
    (void)tok.decode(text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)g_fixture;
    size_t begin = 0;
    for (size_t part = 0; part < 3; ++part) {
        size_t end = begin;
        while (end < size && data[end] != 0) ++end;
        if (begin < end) dlfuzz::write_scratch_file(k_files[part], data + begin, end - begin);
        else dlfuzz::remove_scratch_file(k_files[part]);
        begin = end < size ? end + 1 : size;
    }
    try {
        exercise(dl::Tokenizer::load(dlfuzz::scratch_dir()));
    } catch (const dl::Error&) {
    }
    return 0;
}
