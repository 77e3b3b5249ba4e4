// The LLaVA/LLaMA tokenizer: SentencePiece (tokenizer.model) plus Hugging Face's added tokens.
//
// SentencePiece cannot live in a LibTorch process (protobuf clash, shared/specs/stack.md), so the
// SentencePiece part runs in libdartlens_spm.so, which this class dlopen()s with RTLD_LOCAL |
// RTLD_DEEPBIND. The shim is found through env DARTLENS_SPM_SHIM (the file, or its directory),
// else next to the running executable, else in the build's bin directory. Added tokens
// ("<image>", "<pad>", ids at or beyond the SentencePiece vocabulary) come from added_tokens.json,
// tokenizer_config.json's added_tokens_decoder and special_tokens_map.json. Encoding is plain
// SentencePiece (added tokens in the text are not split out: prompt.h places the image token).
// A Tokenizer is cheap to copy and safe to use from several threads.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dl {

struct AddedToken {
    int id = 0;
    std::string content;      // "<image>"
    bool special = true;      // skipped by decode()
};

class Tokenizer {
public:
    // Reads model_dir/tokenizer.model (dl::Error naming it when missing or corrupt) and the
    // added-token files that exist. Their token ids must be whole integers ("32000abc" is refused)
    // and the added ids must follow the SentencePiece ids without gaps; dl::Error names the file
    // and the token or key otherwise. Throws dl::Error when the shim cannot be found or loaded.
    static Tokenizer load(const std::string& model_dir);
    // Only a tokenizer.model, no added tokens.
    static Tokenizer load_model_file(const std::string& tokenizer_model_path);

    // SentencePiece EncodeAsIds: dummy prefix, byte fallback, no bos/eos. "" -> {}.
    std::vector<int> encode(const std::string& text) const;
    // As HF decode(skip_special_tokens=True): drops bos/eos/unk/control and special added tokens
    // (image, pad); non-special added tokens are emitted as their content. Ids at or beyond
    // vocab_size() (embedding padding rows) are skipped; negative ids throw dl::Error.
    std::string decode(const std::vector<int>& ids) const;
    // Text that ids[start..] add to decode(ids[0..start)), for streaming: holds back a trailing
    // incomplete UTF-8 sequence (returns "" until the bytes complete). Callers pass the ids
    // generated so far and the count already shown.
    std::string decode_suffix(const std::vector<int>& ids, size_t start) const;

    // Piece string ("▁the", "<0x0A>", "<s>", or the added token's content). dl::Error if out of range.
    std::string piece(int id) const;
    // Id of a piece or added token; -1 if unknown.
    int piece_to_id(const std::string& piece) const;
    bool is_special(int id) const;    // control/unknown piece or special added token

    int bos_id() const { return bos_id_; }
    int eos_id() const { return eos_id_; }
    int unk_id() const { return unk_id_; }
    int pad_id() const { return pad_id_; }                  // -1 if none
    int image_token_id() const { return image_token_id_; }  // added "<image>", -1 if none
    int sp_vocab_size() const { return sp_vocab_size_; }
    int vocab_size() const;  // max(sp size, last added id + 1)
    const std::map<int, AddedToken>& added_tokens() const { return added_; }
    const std::string& model_path() const { return model_path_; }

    struct Handle;  // the shim's processor; shared by copies
private:
    std::shared_ptr<Handle> handle_;
    std::map<int, AddedToken> added_;
    std::map<std::string, int> added_by_content_;
    std::string model_path_;
    int sp_vocab_size_ = 0;
    int bos_id_ = 1, eos_id_ = 2, unk_id_ = 0, pad_id_ = -1, image_token_id_ = -1;
};

// Path of the SentencePiece shim this process would load (for diagnostics); dl::Error if none.
std::string find_spm_shim();

}  // namespace dl
