// Reading and writing .safetensors files: memory-mapped, validated, zero-copy where possible.
//
// A .safetensors file is an 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}),
// then the raw little-endian tensor data; offsets are relative to the byte after the header.
// SafetensorsFile maps the file read-only and checks every entry before anything uses it, so a
// corrupt or truncated file fails at open() with a one-line dl::Error naming file and tensor.
// WeightStore gathers the tensors of a model directory (single file or sharded with
// model.safetensors.index.json). Tensors made from a view keep the mapping alive by themselves.
#pragma once

#include <ATen/ATen.h>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dl {

// One tensor inside a mapped file. `data` points into the read-only mapping: never write to it.
struct TensorView {
    std::string name;
    std::string dtype;                 // "F32","F16","BF16","F64","I64","I32","I16","I8","U8","BOOL",...
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;
    size_t nbytes = 0;
    std::string file;                  // path of the file holding it
    std::shared_ptr<const void> keep_alive;  // owns the mapping `data` points into

    int64_t numel() const;
};

// Bytes per element of a safetensors dtype string; 0 if the dtype is unknown.
size_t safetensors_dtype_size(const std::string& dtype);
// "F32" -> at::kFloat etc.; throws dl::Error for dtypes torch cannot hold (U16/U32/U64/F8_*).
at::ScalarType safetensors_dtype_to_scalar(const std::string& dtype);
// at::kFloat -> "F32" etc.; throws dl::Error for types safetensors has no name for.
std::string scalar_to_safetensors_dtype(at::ScalarType type);

class SafetensorsFile {
public:
    // Maps `path` (read-only, MAP_PRIVATE) and validates header and every entry; throws dl::Error.
    static std::shared_ptr<SafetensorsFile> open(const std::string& path);

    const std::vector<TensorView>& tensors() const { return tensors_; }  // in data-offset order
    const TensorView* find(const std::string& name) const;               // nullptr if absent
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const std::string& path() const { return path_; }
    size_t file_size() const { return file_size_; }
    size_t header_size() const { return header_size_; }  // N, the JSON length

private:
    SafetensorsFile() = default;
    std::string path_;
    size_t file_size_ = 0, header_size_ = 0;
    std::shared_ptr<const void> mapping_;
    std::vector<TensorView> tensors_;
    std::map<std::string, size_t> by_name_;
    std::map<std::string, std::string> metadata_;
};

class WeightStore {
public:
    // A model directory: model.safetensors; else model.safetensors.index.json (weight_map; every
    // listed shard must exist and hold the tensors mapped to it); else the only *.safetensors.
    static WeightStore open_dir(const std::string& dir);
    // One explicit file (e.g. model_fp16.safetensors); dir() is its directory.
    static WeightStore open_file(const std::string& path);

    bool has(const std::string& name) const;
    // Throws dl::Error naming the tensor and the directory when absent.
    const TensorView& view(const std::string& name) const;
    std::vector<std::string> names() const;         // file order, then data-offset order
    int64_t total_bytes() const;                     // sum of the tensors' nbytes
    const std::string& dir() const { return dir_; }
    std::vector<std::string> files() const;          // paths of the opened files

private:
    std::string dir_;
    std::vector<std::shared_ptr<SafetensorsFile>> files_;
    std::map<std::string, const TensorView*> index_;  // into files_' tensor lists (stable)
    std::vector<std::string> order_;
};

// A tensor of `dtype` on `device` with the view's data. Zero-copy (at::from_blob over the
// mapping, which the tensor keeps alive) when the stored dtype already is `dtype`, device is CPU
// and the data is aligned; such a tensor is backed by read-only memory: do not modify in place.
// Otherwise the data is converted (e.g. F16/BF16 -> F32) and copied to the device.
at::Tensor tensor_from_view(const TensorView& view, at::ScalarType dtype, at::Device device);
// Same, looked up by name in the store (dl::Error if absent).
at::Tensor tensor_from_store(const WeightStore& store, const std::string& name,
                             at::ScalarType dtype, at::Device device);
// The view as a tensor of its own stored dtype on CPU, zero-copy when aligned.
at::Tensor tensor_from_view(const TensorView& view);

// Writes a .safetensors file byte-for-byte as Hugging Face's safetensors does: tensors sorted by
// dtype (widest first) then name, compact JSON header with "__metadata__" first (omitted when
// empty), padded with spaces to a multiple of 8, data packed in that order. Writes path + ".tmp"
// and renames it over `path`. Tensors may be on any device and non-contiguous.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace dl
