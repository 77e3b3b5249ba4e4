// fuzz_tokenizer_model: tokenizer.model bytes through Tokenizer::load_model_file, which hands them
// to SentencePiece in the dlopen()ed shim (libdartlens_spm.so). SentencePiece itself is Debian's
// uninstrumented library, so coverage only guides the fuzzer through our side; the run still
// catches crashes and aborts anywhere. A loaded model must encode and decode.
#include <vector>

#include "core/common.h"
#include "core/io/tokenizer.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = dlfuzz::write_scratch_file("tokenizer.model", data, size);
    try {
        dl::Tokenizer tok = dl::Tokenizer::load_model_file(path);
        std::vector<int> ids = tok.encode("the red ball \xC3\xA9\n\xF0\x9F\x90\x88");
        ids.push_back(tok.bos_id());
        ids.push_back(tok.eos_id());
        ids.push_back(tok.sp_vocab_size() - 1);
        std::vector<int> valid;
        for (int id : ids)
            if (id >= 0) valid.push_back(id);
        (void)tok.decode(valid);
        (void)tok.decode_suffix(valid, 1);
        for (int id = 0; id < tok.sp_vocab_size() && id < 64; ++id) (void)tok.piece_to_id(tok.piece(id));
    } catch (const dl::Error&) {
    }
    return 0;
}
