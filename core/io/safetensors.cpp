// Safetensors reader (mmap + full validation), model-directory weight store, and HF-exact writer.
#include "core/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/common.h"

namespace dl {

namespace fs = std::filesystem;

namespace {

// Rust safetensors' Dtype enum order (its writer sorts by it, widest-declared first).
struct DtypeInfo {
    const char* name;
    size_t size;
    int rank;
};
const DtypeInfo k_dtypes[] = {
    {"BOOL", 1, 0}, {"U8", 1, 1},    {"I8", 1, 2},   {"F8_E5M2", 1, 3}, {"F8_E4M3", 1, 4},
    {"I16", 2, 5},  {"U16", 2, 6},   {"F16", 2, 7},  {"BF16", 2, 8},    {"I32", 4, 9},
    {"U32", 4, 10}, {"F32", 4, 11},  {"F64", 8, 12}, {"I64", 8, 13},    {"U64", 8, 14},
};

const DtypeInfo* dtype_info(const std::string& name) {
    for (const auto& d : k_dtypes)
        if (name == d.name) return &d;
    return nullptr;
}

// Owns one read-only mapping; unmapped when the last tensor/file holding it goes away.
struct Mapping {
    void* base = nullptr;
    size_t size = 0;
    ~Mapping() {
        if (base) munmap(base, size);
    }
};

std::string json_type_name(const nlohmann::json& j) { return j.type_name(); }

}  // namespace

int64_t TensorView::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

size_t safetensors_dtype_size(const std::string& dtype) {
    const DtypeInfo* d = dtype_info(dtype);
    return d ? d->size : 0;
}

at::ScalarType safetensors_dtype_to_scalar(const std::string& dtype) {
    if (dtype == "F32") return at::kFloat;
    if (dtype == "F16") return at::kHalf;
    if (dtype == "BF16") return at::kBFloat16;
    if (dtype == "F64") return at::kDouble;
    if (dtype == "I64") return at::kLong;
    if (dtype == "I32") return at::kInt;
    if (dtype == "I16") return at::kShort;
    if (dtype == "I8") return at::kChar;
    if (dtype == "U8") return at::kByte;
    if (dtype == "BOOL") return at::kBool;
    throw Error(str_cat("safetensors dtype '", dtype, "' has no torch equivalent"));
}

std::string scalar_to_safetensors_dtype(at::ScalarType type) {
    switch (type) {
        case at::kFloat: return "F32";
        case at::kHalf: return "F16";
        case at::kBFloat16: return "BF16";
        case at::kDouble: return "F64";
        case at::kLong: return "I64";
        case at::kInt: return "I32";
        case at::kShort: return "I16";
        case at::kChar: return "I8";
        case at::kByte: return "U8";
        case at::kBool: return "BOOL";
        default: break;
    }
    throw Error(str_cat("torch dtype ", c10::toString(type), " cannot be stored in safetensors"));
}

// --- SafetensorsFile --------------------------------------------------------------------------

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
    auto fail = [&](const std::string& what) -> Error { return Error(str_cat(path, ": ", what)); };

    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw fail(str_cat("cannot open: ", std::strerror(errno)));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        throw fail(str_cat("cannot stat: ", std::strerror(e)));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw fail("not a regular file");
    }
    const size_t file_size = static_cast<size_t>(st.st_size);
    if (file_size < 8) {
        ::close(fd);
        throw fail(str_cat("file is ", file_size, " bytes, too small for a safetensors header"));
    }
    void* base = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    ::close(fd);
    if (base == MAP_FAILED) throw fail(str_cat("mmap failed: ", std::strerror(map_errno)));
    auto mapping = std::make_shared<Mapping>();
    mapping->base = base;
    mapping->size = file_size;
    const uint8_t* bytes = static_cast<const uint8_t*>(base);

    // 8-byte little-endian header length.
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
    const uint64_t k_max_header = 100000000;  // the limit Rust safetensors enforces
    if (header_len < 2 || header_len > k_max_header)
        throw fail(str_cat("header length ", header_len, " is not sane (file is ", file_size,
                           " bytes)"));
    if (header_len > file_size - 8)
        throw fail(str_cat("header length ", header_len, " runs past the end of the file (",
                           file_size, " bytes)"));
    const char* header = reinterpret_cast<const char*>(bytes + 8);
    if (header[0] != '{') throw fail("header does not start with '{'");

    nlohmann::json j;
    try {
        j = nlohmann::json::parse(header, header + header_len);
    } catch (const nlohmann::json::exception& e) {
        throw fail(str_cat("header is not valid JSON: ", e.what()));
    }
    if (!j.is_object()) throw fail("header is not a JSON object");

    auto file = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
    file->path_ = path;
    file->file_size_ = file_size;
    file->header_size_ = header_len;
    file->mapping_ = mapping;
    const size_t data_start = 8 + header_len;
    const uint64_t data_size = file_size - data_start;

    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& name = it.key();
        const nlohmann::json& e = it.value();
        if (name == "__metadata__") {
            if (!e.is_object()) throw fail("__metadata__ is not a JSON object");
            for (auto m = e.begin(); m != e.end(); ++m) {
                if (!m.value().is_string())
                    throw fail(str_cat("__metadata__ '", m.key(), "': expected string, got ",
                                       json_type_name(m.value())));
                file->metadata_[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        auto bad = [&](const std::string& what) -> Error {
            return Error(str_cat(path, ": tensor '", name, "': ", what));
        };
        if (!e.is_object()) throw bad("entry is not a JSON object");
        for (auto k = e.begin(); k != e.end(); ++k)
            if (k.key() != "dtype" && k.key() != "shape" && k.key() != "data_offsets")
                throw bad(str_cat("unknown key '", k.key(), "'"));
        if (!e.contains("dtype") || !e["dtype"].is_string()) throw bad("missing or non-string dtype");
        const std::string dtype = e["dtype"].get<std::string>();
        const DtypeInfo* info = dtype_info(dtype);
        if (!info) throw bad(str_cat("unknown dtype '", dtype, "'"));
        if (!e.contains("shape") || !e["shape"].is_array()) throw bad("missing or non-array shape");
        TensorView v;
        v.name = name;
        v.dtype = dtype;
        v.file = path;
        v.keep_alive = mapping;
        unsigned __int128 count = 1;
        for (const auto& d : e["shape"]) {
            if (!d.is_number_integer() || (d.is_number_integer() && !d.is_number_unsigned() &&
                                           d.get<int64_t>() < 0))
                throw bad(str_cat("shape entry ", d.dump(), " is not a non-negative integer"));
            uint64_t dim = d.get<uint64_t>();
            if (dim > (uint64_t(1) << 62)) throw bad(str_cat("shape entry ", dim, " too large"));
            count *= dim;
            if (count > (unsigned __int128)(uint64_t(1) << 62)) throw bad("shape product overflows");
            v.shape.push_back(static_cast<int64_t>(dim));
        }
        if (!e.contains("data_offsets") || !e["data_offsets"].is_array() ||
            e["data_offsets"].size() != 2)
            throw bad("data_offsets must be an array [begin, end]");
        const auto& off = e["data_offsets"];
        for (const auto& o : off)
            if (!o.is_number_unsigned())
                throw bad(str_cat("data offset ", o.dump(), " is not a non-negative integer"));
        const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
        if (begin > end) throw bad(str_cat("data_offsets [", begin, ",", end, ") has begin > end"));
        if (end > data_size)
            throw bad(str_cat("data_offsets [", begin, ",", end, ") beyond data size ", data_size));
        const unsigned __int128 expect = count * info->size;
        if ((unsigned __int128)(end - begin) != expect)
            throw bad(str_cat("data_offsets [", begin, ",", end, ") hold ", end - begin,
                              " bytes but shape x ", dtype, " needs ",
                              static_cast<uint64_t>(expect)));
        v.data = bytes + data_start + begin;
        v.nbytes = static_cast<size_t>(end - begin);
        file->tensors_.push_back(std::move(v));
    }

    // Order by offset and reject overlapping (non-empty) ranges.
    auto begin_of = [&](const TensorView& v) { return v.data - bytes; };
    std::stable_sort(file->tensors_.begin(), file->tensors_.end(),
                     [&](const TensorView& a, const TensorView& b) {
                         return begin_of(a) < begin_of(b);
                     });
    const TensorView* prev = nullptr;
    for (const auto& v : file->tensors_) {
        if (v.nbytes == 0) continue;
        if (prev && begin_of(v) < begin_of(*prev) + static_cast<ptrdiff_t>(prev->nbytes))
            throw Error(str_cat(path, ": tensor '", v.name, "': data overlaps tensor '",
                                prev->name, "'"));
        prev = &v;
    }
    for (size_t i = 0; i < file->tensors_.size(); ++i) file->by_name_[file->tensors_[i].name] = i;
    return file;
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

// --- WeightStore ------------------------------------------------------------------------------

WeightStore WeightStore::open_file(const std::string& path) {
    WeightStore store;
    store.dir_ = fs::path(path).parent_path().string();
    auto file = SafetensorsFile::open(path);
    store.files_.push_back(file);
    for (const auto& v : file->tensors()) {
        store.index_[v.name] = &v;
        store.order_.push_back(v.name);
    }
    return store;
}

WeightStore WeightStore::open_dir(const std::string& dir) {
    if (!fs::is_directory(dir)) throw Error(str_cat(dir, ": not a directory"));
    const fs::path root(dir);
    if (fs::exists(root / "model.safetensors")) {
        WeightStore store = open_file((root / "model.safetensors").string());
        store.dir_ = dir;
        return store;
    }
    const fs::path index_path = root / "model.safetensors.index.json";
    if (fs::exists(index_path)) {
        const std::string ip = index_path.string();
        nlohmann::json j;
        {
            std::ifstream in(ip, std::ios::binary);
            if (!in) throw Error(str_cat(ip, ": cannot open"));
            try {
                j = nlohmann::json::parse(in);
            } catch (const nlohmann::json::exception& e) {
                throw Error(str_cat(ip, ": not valid JSON: ", e.what()));
            }
        }
        if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
            throw Error(str_cat(ip, ": weight_map: missing or not an object"));
        WeightStore store;
        store.dir_ = dir;
        std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
        std::vector<std::string> shard_order;
        for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
            if (!it.value().is_string())
                throw Error(str_cat(ip, ": weight_map '", it.key(), "': expected string, got ",
                                    it.value().type_name()));
            const std::string shard = it.value().get<std::string>();
            if (shard.empty() || shard.find('/') != std::string::npos || shard == "..")
                throw Error(str_cat(ip, ": weight_map '", it.key(), "': bad shard name '", shard,
                                    "'"));
            if (!shards.count(shard)) {
                const fs::path sp = root / shard;
                if (!fs::exists(sp))
                    throw Error(str_cat(ip, ": shard '", shard, "' listed for tensor '", it.key(),
                                        "' does not exist in ", dir));
                shards[shard] = SafetensorsFile::open(sp.string());
                shard_order.push_back(shard);
            }
        }
        // Files in name order (model-00001-of-... sort naturally), tensors by offset inside each.
        std::sort(shard_order.begin(), shard_order.end());
        for (const auto& s : shard_order) store.files_.push_back(shards[s]);
        for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
            const std::string shard = it.value().get<std::string>();
            const TensorView* v = shards[shard]->find(it.key());
            if (!v)
                throw Error(str_cat(shards[shard]->path(), ": tensor '", it.key(),
                                    "': listed in model.safetensors.index.json but not in the shard"));
            store.index_[it.key()] = v;
        }
        for (const auto& f : store.files_)
            for (const auto& v : f->tensors())
                if (store.index_.count(v.name) && store.index_[v.name] == &v)
                    store.order_.push_back(v.name);
        return store;
    }
    std::vector<std::string> candidates;
    for (const auto& entry : fs::directory_iterator(root))
        if (entry.is_regular_file() && entry.path().extension() == ".safetensors")
            candidates.push_back(entry.path().filename().string());
    std::sort(candidates.begin(), candidates.end());
    if (candidates.empty())
        throw Error(str_cat(dir, ": no model.safetensors, model.safetensors.index.json or "
                                 "*.safetensors file"));
    if (candidates.size() > 1) {
        std::string list;
        for (const auto& c : candidates) list += (list.empty() ? "" : ", ") + c;
        throw Error(str_cat(dir, ": no model.safetensors or index, and several *.safetensors (",
                            list, "); cannot tell which holds the weights"));
    }
    WeightStore store = open_file((root / candidates[0]).string());
    store.dir_ = dir;
    return store;
}

bool WeightStore::has(const std::string& name) const { return index_.count(name) > 0; }

const TensorView& WeightStore::view(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw Error(str_cat(dir_, ": tensor '", name, "' not found in checkpoint"));
    return *it->second;
}

std::vector<std::string> WeightStore::names() const { return order_; }

int64_t WeightStore::total_bytes() const {
    int64_t total = 0;
    for (const auto& kv : index_) total += static_cast<int64_t>(kv.second->nbytes);
    return total;
}

std::vector<std::string> WeightStore::files() const {
    std::vector<std::string> out;
    for (const auto& f : files_) out.push_back(f->path());
    return out;
}

// --- tensors from views -----------------------------------------------------------------------

at::Tensor tensor_from_view(const TensorView& view) {
    const at::ScalarType stored = safetensors_dtype_to_scalar(view.dtype);
    const size_t item = safetensors_dtype_size(view.dtype);
    auto opts = at::TensorOptions().dtype(stored).device(at::kCPU);
    if (view.nbytes == 0) return at::empty(view.shape, opts);
    auto* ptr = const_cast<uint8_t*>(view.data);
    if (reinterpret_cast<uintptr_t>(ptr) % item == 0) {
        std::shared_ptr<const void> keep = view.keep_alive;
        return at::from_blob(ptr, view.shape, [keep](void*) mutable { keep.reset(); }, opts);
    }
    // Misaligned: copy into a fresh, aligned buffer.
    at::Tensor out = at::empty(view.shape, opts);
    std::memcpy(out.data_ptr(), view.data, view.nbytes);
    return out;
}

// After a tensor was converted (f16 -> f32, or copied to a GPU) its bytes in the mapping are not
// needed any more: drop those clean file-backed pages from the resident set, so peak RSS while
// loading stays near the converted weights instead of converted + stored. Whole pages inside the
// tensor only (neighbours may still be in use); re-reading them later just faults them back in.
static void release_mapped_pages(const TensorView& view) {
    const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(view.data) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(view.data) + view.nbytes) / page * page;
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

at::Tensor tensor_from_view(const TensorView& view, at::ScalarType dtype, at::Device device) {
    at::Tensor stored;
    try {
        stored = tensor_from_view(view);
    } catch (const Error& e) {
        throw Error(str_cat(view.file, ": tensor '", view.name, "': ", e.what()));
    }
    if (stored.scalar_type() == dtype && device.is_cpu()) return stored;
    at::Tensor converted = stored.to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
    release_mapped_pages(view);
    return converted;
}

at::Tensor tensor_from_store(const WeightStore& store, const std::string& name,
                             at::ScalarType dtype, at::Device device) {
    return tensor_from_view(store.view(name), dtype, device);
}

// --- writer -----------------------------------------------------------------------------------

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    struct Item {
        std::string name, dtype;
        int rank;
        at::Tensor data;  // contiguous CPU
    };
    std::vector<Item> items;
    std::map<std::string, int> seen;
    for (const auto& [name, t] : tensors) {
        if (name == "__metadata__") throw Error(str_cat(path, ": tensor name '__metadata__' is reserved"));
        if (seen.count(name)) throw Error(str_cat(path, ": tensor '", name, "': duplicate name"));
        seen[name] = 1;
        if (!t.defined()) throw Error(str_cat(path, ": tensor '", name, "': undefined tensor"));
        std::string dtype;
        try {
            dtype = scalar_to_safetensors_dtype(t.scalar_type());
        } catch (const Error& e) {
            throw Error(str_cat(path, ": tensor '", name, "': ", e.what()));
        }
        items.push_back({name, dtype, dtype_info(dtype)->rank, t.detach().cpu().contiguous()});
    }
    std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
        if (a.rank != b.rank) return a.rank > b.rank;
        return a.name < b.name;
    });

    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        nlohmann::ordered_json m = nlohmann::ordered_json::object();
        for (const auto& [k, v] : metadata) m[k] = v;
        header["__metadata__"] = m;
    }
    uint64_t offset = 0;
    for (const auto& it : items) {
        nlohmann::ordered_json e = nlohmann::ordered_json::object();
        e["dtype"] = it.dtype;
        nlohmann::ordered_json shape = nlohmann::ordered_json::array();
        for (int64_t d : it.data.sizes()) shape.push_back(d);
        e["shape"] = shape;
        const uint64_t n = static_cast<uint64_t>(it.data.numel()) * it.data.element_size();
        e["data_offsets"] = nlohmann::ordered_json::array({offset, offset + n});
        offset += n;
        header[it.name] = e;
    }
    std::string hjson = header.dump();
    hjson.append((8 - hjson.size() % 8) % 8, ' ');

    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw Error(str_cat(tmp, ": cannot create: ", std::strerror(errno)));
    bool ok = true;
    uint8_t len_bytes[8];
    uint64_t hl = hjson.size();
    for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<uint8_t>(hl >> (8 * i));
    ok = ok && std::fwrite(len_bytes, 1, 8, f) == 8;
    ok = ok && std::fwrite(hjson.data(), 1, hjson.size(), f) == hjson.size();
    for (const auto& it : items) {
        const size_t n = static_cast<size_t>(it.data.numel()) * it.data.element_size();
        if (n) ok = ok && std::fwrite(it.data.data_ptr(), 1, n, f) == n;
    }
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
        std::remove(tmp.c_str());
        throw Error(str_cat(tmp, ": write failed"));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        std::remove(tmp.c_str());
        throw Error(str_cat(path, ": cannot rename from ", tmp, ": ", std::strerror(e)));
    }
}

}  // namespace dl
