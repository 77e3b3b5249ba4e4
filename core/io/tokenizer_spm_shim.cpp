// A C-API shim around SentencePiece, built as its own shared library (libdartlens_spm.so).
//
// Debian's libsentencepiece embeds protobuf-lite 3.14 and exports its symbols, which clash with
// LibTorch's protobuf 3.21 in one process. core/io/tokenizer.cpp therefore never links SentencePiece:
// it dlopen()s this library with RTLD_LOCAL | RTLD_DEEPBIND, so SentencePiece's protobuf binds to
// itself, and talks to it only through these plain C functions. No C++ type and no exception ever
// crosses this boundary: every function catches everything and reports errors as text copied into
// a caller-supplied buffer. Buffers follow the snprintf convention: the return value is the size
// needed, and the caller retries with a larger buffer when it exceeds the capacity.
#include <sentencepiece_processor.h>

#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#define DL_SPM_API extern "C" __attribute__((visibility("default")))

namespace {

struct SpmHandle {
    sentencepiece::SentencePieceProcessor processor;
};

void copy_text(const std::string& text, char* out, long cap) {
    if (!out || cap <= 0) return;
    size_t n = text.size() < static_cast<size_t>(cap - 1) ? text.size() : static_cast<size_t>(cap - 1);
    std::memcpy(out, text.data(), n);
    out[n] = '\0';
}

SpmHandle* as_handle(void* h) { return static_cast<SpmHandle*>(h); }

}  // namespace

// Version of this C API; tokenizer.cpp refuses a shim with another version.
DL_SPM_API int dartlens_spm_abi_version() { return 1; }

// Loads a tokenizer.model. Returns an opaque handle, or nullptr with the reason in `err`.
DL_SPM_API void* dartlens_spm_load(const char* path, char* err, long err_cap) {
    try {
        std::unique_ptr<SpmHandle> handle(new SpmHandle());
        auto status = handle->processor.Load(path);
        if (!status.ok()) {
            copy_text(status.ToString(), err, err_cap);
            return nullptr;
        }
        if (handle->processor.GetPieceSize() <= 0) {
            copy_text("the model has no pieces", err, err_cap);
            return nullptr;
        }
        return handle.release();
    } catch (const std::exception& e) {
        copy_text(std::string("exception: ") + e.what(), err, err_cap);
    } catch (...) {
        copy_text("unknown exception", err, err_cap);
    }
    return nullptr;
}

DL_SPM_API void dartlens_spm_free(void* h) {
    try {
        delete as_handle(h);
    } catch (...) {
    }
}

// Encodes `len` bytes of UTF-8 as SentencePiece's EncodeAsIds does (dummy prefix and byte
// fallback as the model defines; no bos/eos). Writes up to `cap` ids; returns the number of ids,
// or -1 with the reason in `err`.
DL_SPM_API long dartlens_spm_encode(void* h, const char* text, long len, int* out, long cap,
                                    char* err, long err_cap) {
    try {
        std::vector<int> ids;
        auto status = as_handle(h)->processor.Encode(std::string(text, static_cast<size_t>(len)), &ids);
        if (!status.ok()) {
            copy_text(status.ToString(), err, err_cap);
            return -1;
        }
        for (size_t i = 0; i < ids.size() && static_cast<long>(i) < cap; ++i) out[i] = ids[i];
        return static_cast<long>(ids.size());
    } catch (const std::exception& e) {
        copy_text(std::string("exception: ") + e.what(), err, err_cap);
    } catch (...) {
        copy_text("unknown exception", err, err_cap);
    }
    return -1;
}

// Decodes ids to UTF-8 (DecodeIds: control ids vanish, byte pieces merge, the dummy prefix of
// the first piece is dropped). Writes a NUL-terminated prefix into `out`; returns the full byte
// length, or -1 with the reason in `err` (e.g. an id out of range).
DL_SPM_API long dartlens_spm_decode(void* h, const int* ids, long n, char* out, long cap,
                                    char* err, long err_cap) {
    try {
        std::vector<int> id_list(ids, ids + n);
        std::string text;
        auto status = as_handle(h)->processor.Decode(id_list, &text);
        if (!status.ok()) {
            copy_text(status.ToString(), err, err_cap);
            return -1;
        }
        copy_text(text, out, cap);
        return static_cast<long>(text.size());
    } catch (const std::exception& e) {
        copy_text(std::string("exception: ") + e.what(), err, err_cap);
    } catch (...) {
        copy_text("unknown exception", err, err_cap);
    }
    return -1;
}

// The piece string of `id` ("▁the", "<0x0A>", "<s>"); returns its byte length, -1 if out of range.
DL_SPM_API long dartlens_spm_id_to_piece(void* h, int id, char* out, long cap) {
    try {
        const auto& p = as_handle(h)->processor;
        if (id < 0 || id >= p.GetPieceSize()) return -1;
        const std::string& piece = p.IdToPiece(id);
        copy_text(piece, out, cap);
        return static_cast<long>(piece.size());
    } catch (...) {
        return -1;
    }
}

// Id of a piece string; the unk id when the piece is not in the vocabulary; -1 on failure.
DL_SPM_API int dartlens_spm_piece_to_id(void* h, const char* piece, long len) {
    try {
        return as_handle(h)->processor.PieceToId(std::string(piece, static_cast<size_t>(len)));
    } catch (...) {
        return -1;
    }
}

DL_SPM_API int dartlens_spm_vocab_size(void* h) {
    try {
        return as_handle(h)->processor.GetPieceSize();
    } catch (...) {
        return -1;
    }
}

DL_SPM_API int dartlens_spm_bos_id(void* h) {
    try { return as_handle(h)->processor.bos_id(); } catch (...) { return -1; }
}

DL_SPM_API int dartlens_spm_eos_id(void* h) {
    try { return as_handle(h)->processor.eos_id(); } catch (...) { return -1; }
}

DL_SPM_API int dartlens_spm_unk_id(void* h) {
    try { return as_handle(h)->processor.unk_id(); } catch (...) { return -1; }
}

// Kind of piece `id`: 0 normal (or user-defined), 1 control (<s>, </s>), 2 unknown, 3 byte
// (<0xNN>), 4 unused;
// -1 if out of range.
DL_SPM_API int dartlens_spm_piece_kind(void* h, int id) {
    try {
        const auto& p = as_handle(h)->processor;
        if (id < 0 || id >= p.GetPieceSize()) return -1;
        if (p.IsControl(id)) return 1;
        if (p.IsUnknown(id)) return 2;
        if (p.IsByte(id)) return 3;
        if (p.IsUnused(id)) return 4;
        return 0;
    } catch (...) {
        return -1;
    }
}
