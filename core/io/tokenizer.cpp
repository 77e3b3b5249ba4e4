// Tokenizer: the dlopen()ed SentencePiece shim plus Hugging Face's added-token files.
#include "core/io/tokenizer.h"

#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/common.h"
#include "core/io/json_util.h"

#ifndef DARTLENS_SHIM_NAME
#define DARTLENS_SHIM_NAME "libdartlens_spm.so"
#endif

namespace fs = std::filesystem;

namespace dl {

namespace {

constexpr int kShimAbiVersion = 1;

struct ShimApi {
    std::string path;
    int (*abi_version)();
    void* (*load)(const char*, char*, long);
    void (*free_handle)(void*);
    long (*encode)(void*, const char*, long, int*, long, char*, long);
    long (*decode)(void*, const int*, long, char*, long, char*, long);
    long (*id_to_piece)(void*, int, char*, long);
    int (*piece_to_id)(void*, const char*, long);
    int (*vocab_size)(void*);
    int (*bos_id)(void*);
    int (*eos_id)(void*);
    int (*unk_id)(void*);
    int (*piece_kind)(void*, int);
};

enum PieceKind { kPieceNormal = 0, kPieceControl = 1, kPieceUnknown = 2, kPieceByte = 3, kPieceUnused = 4 };

std::string exe_dir() {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0) return "";
    buf[n] = '\0';
    return fs::path(buf).parent_path().string();
}

std::vector<std::string> shim_candidates() {
    std::vector<std::string> out;
    if (const char* env = std::getenv("DARTLENS_SPM_SHIM"); env && *env) {
        std::error_code ec;
        if (fs::is_directory(env, ec)) out.push_back((fs::path(env) / DARTLENS_SHIM_NAME).string());
        else out.push_back(env);
        return out;  // an explicit choice is not second-guessed
    }
    std::string dir = exe_dir();
    if (!dir.empty()) {
        out.push_back((fs::path(dir) / DARTLENS_SHIM_NAME).string());
        out.push_back((fs::path(dir) / ".." / "lib" / DARTLENS_SHIM_NAME).string());
    }
#ifdef DARTLENS_BUILD_BIN_DIR
    out.push_back((fs::path(DARTLENS_BUILD_BIN_DIR) / DARTLENS_SHIM_NAME).string());
#endif
    return out;
}

template <typename Fn>
void bind_symbol(void* lib, const std::string& path, const char* name, Fn& fn) {
    void* sym = ::dlsym(lib, name);
    if (!sym) throw Error(str_cat(path, ": missing symbol ", name, " (stale SentencePiece shim?)"));
    fn = reinterpret_cast<Fn>(sym);
}

// Loads the shim once per process; a failure is not cached so that a fixed environment can retry.
const ShimApi& shim_api() {
    static std::mutex mutex;
    static std::unique_ptr<ShimApi> api;
    std::lock_guard<std::mutex> lock(mutex);
    if (api) return *api;

    std::string path = find_spm_shim();
    // DEEPBIND keeps SentencePiece's embedded protobuf away from LibTorch's. AddressSanitizer
    // refuses DEEPBIND, so sanitizer builds go without it.
    int flags = RTLD_NOW | RTLD_LOCAL;
#if !defined(__SANITIZE_ADDRESS__)
    flags |= RTLD_DEEPBIND;
#endif
    void* lib = ::dlopen(path.c_str(), flags);
    if (!lib) {
        const char* why = ::dlerror();
        throw Error(str_cat(path, ": cannot load the SentencePiece shim: ", why ? why : "dlopen failed"));
    }
    auto loaded = std::make_unique<ShimApi>();
    loaded->path = path;
    bind_symbol(lib, path, "dartlens_spm_abi_version", loaded->abi_version);
    int version = loaded->abi_version();
    if (version != kShimAbiVersion)
        throw Error(str_cat(path, ": SentencePiece shim ABI version ", version, ", expected ", kShimAbiVersion));
    bind_symbol(lib, path, "dartlens_spm_load", loaded->load);
    bind_symbol(lib, path, "dartlens_spm_free", loaded->free_handle);
    bind_symbol(lib, path, "dartlens_spm_encode", loaded->encode);
    bind_symbol(lib, path, "dartlens_spm_decode", loaded->decode);
    bind_symbol(lib, path, "dartlens_spm_id_to_piece", loaded->id_to_piece);
    bind_symbol(lib, path, "dartlens_spm_piece_to_id", loaded->piece_to_id);
    bind_symbol(lib, path, "dartlens_spm_vocab_size", loaded->vocab_size);
    bind_symbol(lib, path, "dartlens_spm_bos_id", loaded->bos_id);
    bind_symbol(lib, path, "dartlens_spm_eos_id", loaded->eos_id);
    bind_symbol(lib, path, "dartlens_spm_unk_id", loaded->unk_id);
    bind_symbol(lib, path, "dartlens_spm_piece_kind", loaded->piece_kind);
    // The library stays loaded for the life of the process (never dlclose'd).
    api = std::move(loaded);
    return *api;
}

// special_tokens_map.json values are either "<s>" or {"content": "<s>", ...}.
std::string token_content(const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return "";
}

// Drops trailing U+FFFD (EF BF BD) that SentencePiece emits for an incomplete byte sequence.
void strip_trailing_replacement(std::string& s) {
    while (s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0) s.resize(s.size() - 3);
}

}  // namespace

struct Tokenizer::Handle {
    const ShimApi* api = nullptr;
    void* sp = nullptr;
    std::vector<int> kinds;  // PieceKind per SentencePiece id
    ~Handle() {
        if (api && sp) api->free_handle(sp);
    }
};

std::string find_spm_shim() {
    std::vector<std::string> candidates = shim_candidates();
    std::error_code ec;
    for (const auto& c : candidates)
        if (fs::is_regular_file(c, ec)) return c;
    std::string tried;
    for (const auto& c : candidates) tried += (tried.empty() ? "" : ", ") + c;
    throw Error(str_cat("SentencePiece shim ", DARTLENS_SHIM_NAME, " not found (tried: ", tried,
                        "); set DARTLENS_SPM_SHIM to its path"));
}

Tokenizer Tokenizer::load_model_file(const std::string& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw Error(str_cat(path, ": tokenizer model not found"));
    if (fs::file_size(path, ec) == 0) throw Error(str_cat(path, ": tokenizer model is empty (0 bytes)"));
    const ShimApi& api = shim_api();

    char err[1024] = {0};
    void* sp = api.load(path.c_str(), err, sizeof(err));
    if (!sp) throw Error(str_cat(path, ": cannot load SentencePiece model: ", err));

    Tokenizer t;
    t.handle_ = std::make_shared<Handle>();
    t.handle_->api = &api;
    t.handle_->sp = sp;
    t.model_path_ = path;
    t.sp_vocab_size_ = api.vocab_size(sp);
    t.bos_id_ = api.bos_id(sp);
    t.eos_id_ = api.eos_id(sp);
    t.unk_id_ = api.unk_id(sp);
    t.handle_->kinds.resize(static_cast<size_t>(t.sp_vocab_size_));
    for (int i = 0; i < t.sp_vocab_size_; ++i) t.handle_->kinds[static_cast<size_t>(i)] = api.piece_kind(sp, i);
    return t;
}

Tokenizer Tokenizer::load(const std::string& model_dir) {
    fs::path dir(model_dir);
    Tokenizer t = load_model_file((dir / "tokenizer.model").string());

    // Token ids are parsed whole and range-checked (int, then the vocabulary below); `origin`
    // keeps where each added id came from, "FILE: field", for the errors.
    constexpr int64_t kMaxId = std::numeric_limits<int>::max() - 1;  // vocab_size() = id + 1 is an int
    std::map<int, std::string> origin;
    auto add = [&](int id, const std::string& content, bool special, const std::string& where) {
        if (id < t.sp_vocab_size_) return;  // already a SentencePiece piece (<s>, </s>, <unk>)
        t.added_[id] = AddedToken{id, content, special};
        origin[id] = where;
    };
    // added_tokens.json: {"<image>": 32000, "<pad>": 32001}. HF's llava-hf marks them special.
    const std::string added_path = (dir / "added_tokens.json").string();
    if (fs::exists(added_path)) {
        nlohmann::json j = read_json_file(added_path);
        if (!j.is_object()) throw Error(str_cat(added_path, ": expected an object of token: id"));
        for (auto it = j.begin(); it != j.end(); ++it) {
            const std::string where = str_cat(added_path, ": token '", it.key(), "'");
            int64_t id = 0;
            const std::string why = json_int(it.value(), 0, kMaxId, &id);
            if (!why.empty()) throw Error(str_cat(where, ": ", why));
            add(int(id), it.key(), true, where);
        }
    }
    // tokenizer_config.json: "added_tokens_decoder": {"32000": {"content": "<image>", "special": true}}
    // The keys are ids as text: parsed whole ("32000abc", " 7", "-3" are not ids).
    const std::string config_path = (dir / "tokenizer_config.json").string();
    nlohmann::json config;
    if (fs::exists(config_path)) {
        config = read_json_file(config_path);
        if (config.is_object() && config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object()) {
            for (auto it = config["added_tokens_decoder"].begin(); it != config["added_tokens_decoder"].end(); ++it) {
                const std::string where = str_cat(config_path, ": added_tokens_decoder key '", it.key(), "'");
                int64_t id = 0;
                const std::string why = parse_int(it.key(), 0, kMaxId, &id);
                if (!why.empty()) throw Error(str_cat(where, " is not a token id: ", why));
                const auto& v = it.value();
                std::string content = token_content(v);
                if (content.empty()) throw Error(str_cat(where, ": has no content"));
                bool special = v.is_object() && v.contains("special") && v["special"].is_boolean() ? v["special"].get<bool>() : true;
                add(int(id), content, special, where);
            }
        }
    }
    // Added tokens extend the SentencePiece vocabulary without gaps: k of them take the ids
    // sp..sp+k-1 (HF's slow tokenizers likewise refuse a "non-consecutive added token"). An id past
    // that is no token, and would make vocab_size() and every table sized by it arbitrary.
    const int64_t vocab_end = int64_t(t.sp_vocab_size_) + int64_t(t.added_.size());
    for (const auto& [id, tok] : t.added_)
        if (id >= vocab_end)
            throw Error(str_cat(origin[id], ": id ", id, " is outside the vocabulary: ", t.sp_vocab_size_,
                                " SentencePiece pieces and ", t.added_.size(), " added token(s) take ids 0..",
                                vocab_end - 1, " (added ids must follow the SentencePiece ids without gaps)"));
    for (const auto& [id, tok] : t.added_) t.added_by_content_[tok.content] = id;

    // special_tokens_map.json names bos/eos/pad by content; fall back to tokenizer_config.json.
    nlohmann::json specials;
    const std::string specials_path = (dir / "special_tokens_map.json").string();
    if (fs::exists(specials_path)) specials = read_json_file(specials_path);
    auto resolve = [&](const char* key, int fallback) {
        std::string content;
        if (specials.is_object() && specials.contains(key)) content = token_content(specials[key]);
        if (content.empty() && config.is_object() && config.contains(key)) content = token_content(config[key]);
        if (content.empty()) return fallback;
        int id = t.piece_to_id(content);
        return id >= 0 ? id : fallback;
    };
    t.bos_id_ = resolve("bos_token", t.bos_id_);
    t.eos_id_ = resolve("eos_token", t.eos_id_);
    t.pad_id_ = resolve("pad_token", -1);
    if (specials.is_object() && specials.contains("additional_special_tokens") && specials["additional_special_tokens"].is_array())
        for (const auto& v : specials["additional_special_tokens"]) {
            auto it = t.added_by_content_.find(token_content(v));
            if (it != t.added_by_content_.end()) t.added_[it->second].special = true;
        }
    if (t.pad_id_ >= t.sp_vocab_size_) t.added_[t.pad_id_].special = true;
    auto image = t.added_by_content_.find("<image>");
    t.image_token_id_ = image != t.added_by_content_.end() ? image->second : -1;
    return t;
}

std::vector<int> Tokenizer::encode(const std::string& text) const {
    if (text.empty()) return {};
    const ShimApi& api = *handle_->api;
    std::vector<int> ids(text.size() + 8);
    char err[512] = {0};
    long n = api.encode(handle_->sp, text.data(), static_cast<long>(text.size()), ids.data(),
                        static_cast<long>(ids.size()), err, sizeof(err));
    if (n < 0) throw Error(str_cat(model_path_, ": encode failed: ", err));
    if (static_cast<size_t>(n) > ids.size()) {
        ids.resize(static_cast<size_t>(n));
        n = api.encode(handle_->sp, text.data(), static_cast<long>(text.size()), ids.data(),
                       static_cast<long>(ids.size()), err, sizeof(err));
        if (n < 0) throw Error(str_cat(model_path_, ": encode failed: ", err));
    }
    ids.resize(static_cast<size_t>(n));
    return ids;
}

bool Tokenizer::is_special(int id) const {
    if (id >= 0 && id < sp_vocab_size_) {
        int kind = handle_->kinds[static_cast<size_t>(id)];
        return kind == kPieceControl || kind == kPieceUnknown;
    }
    auto it = added_.find(id);
    return it != added_.end() && it->second.special;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
    const ShimApi& api = *handle_->api;
    std::string out;
    std::vector<int> run;  // consecutive SentencePiece ids, decoded together
    bool first_run = true;
    auto flush = [&]() {
        if (run.empty()) return;
        std::string buf(run.size() * 16 + 16, '\0');
        char err[512] = {0};
        long n = api.decode(handle_->sp, run.data(), static_cast<long>(run.size()), buf.data(),
                            static_cast<long>(buf.size()), err, sizeof(err));
        if (n >= 0 && static_cast<size_t>(n) >= buf.size()) {
            buf.assign(static_cast<size_t>(n) + 1, '\0');
            n = api.decode(handle_->sp, run.data(), static_cast<long>(run.size()), buf.data(),
                           static_cast<long>(buf.size()), err, sizeof(err));
        }
        if (n < 0) throw Error(str_cat(model_path_, ": decode failed: ", err));
        buf.resize(static_cast<size_t>(n));
        // SentencePiece drops the dummy-prefix space of the first piece of each call; only the
        // very first run of the output should lose it (as HF's convert_tokens_to_string does).
        if (!first_run && !run.empty()) {
            long p = api.id_to_piece(handle_->sp, run[0], nullptr, 0);
            std::string piece(static_cast<size_t>(std::max(p, 0L)) + 1, '\0');
            api.id_to_piece(handle_->sp, run[0], piece.data(), static_cast<long>(piece.size()));
            piece.resize(static_cast<size_t>(std::max(p, 0L)));
            if (piece.rfind("\xE2\x96\x81", 0) == 0) buf.insert(0, " ");
        }
        out += buf;
        first_run = false;
        run.clear();
    };
    for (int id : ids) {
        if (id < 0) throw Error(str_cat(model_path_, ": decode: negative token id ", id));
        // Ids past the tokenizer are embedding padding rows (llava-hf pads 32002 to 32064).
        if (id >= vocab_size() || is_special(id)) continue;
        if (id < sp_vocab_size_) {
            if (handle_->kinds[static_cast<size_t>(id)] == kPieceUnused) continue;
            run.push_back(id);
            continue;
        }
        flush();
        auto it = added_.find(id);
        if (it != added_.end()) {
            out += it->second.content;
            first_run = false;
        }
    }
    flush();
    return out;
}

std::string Tokenizer::decode_suffix(const std::vector<int>& ids, size_t start) const {
    start = std::min(start, ids.size());
    auto stable = [&](size_t n) {
        std::string s = decode(std::vector<int>(ids.begin(), ids.begin() + static_cast<long>(n)));
        if (n > 0) {
            int last = ids[n - 1];
            if (last >= 0 && last < sp_vocab_size_ && handle_->kinds[static_cast<size_t>(last)] == kPieceByte)
                strip_trailing_replacement(s);
        }
        return s;
    };
    std::string before = stable(start), all = stable(ids.size());
    size_t common = 0;
    while (common < before.size() && common < all.size() && before[common] == all[common]) ++common;
    return all.substr(common);
}

std::string Tokenizer::piece(int id) const {
    if (id >= 0 && id < sp_vocab_size_) {
        const ShimApi& api = *handle_->api;
        long n = api.id_to_piece(handle_->sp, id, nullptr, 0);
        if (n < 0) throw Error(str_cat(model_path_, ": piece: id ", id, " out of range"));
        std::string buf(static_cast<size_t>(n) + 1, '\0');
        api.id_to_piece(handle_->sp, id, buf.data(), static_cast<long>(buf.size()));
        buf.resize(static_cast<size_t>(n));
        return buf;
    }
    auto it = added_.find(id);
    if (it != added_.end()) return it->second.content;
    throw Error(str_cat(model_path_, ": piece: token id ", id, " outside the vocabulary of ", vocab_size()));
}

int Tokenizer::piece_to_id(const std::string& piece_text) const {
    auto it = added_by_content_.find(piece_text);
    if (it != added_by_content_.end()) return it->second;
    int id = handle_->api->piece_to_id(handle_->sp, piece_text.data(), static_cast<long>(piece_text.size()));
    if (id < 0) return -1;
    if (id == unk_id_ && piece_text != this->piece(unk_id_)) return -1;
    return id;
}

int Tokenizer::vocab_size() const {
    int n = sp_vocab_size_;
    if (!added_.empty()) n = std::max(n, added_.rbegin()->first + 1);
    return n;
}

}  // namespace dl
