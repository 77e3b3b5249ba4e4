// fuzz_safetensors_index: model.safetensors.index.json through WeightStore::open_dir, in a
// directory holding two small valid shards (written once) and no model.safetensors. The input is
// the index; the shards are fixed, so the fuzzer explores weight_map's names and shard references.
#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "core/common.h"
#include "core/io/safetensors.h"
#include "fuzz_common.h"

namespace {

// A .safetensors file with 1-D F32 tensors of the given lengths, written by hand so that the
// fixture does not depend on the writer under test.
std::string shard_bytes(const std::vector<std::pair<std::string, int>>& tensors) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    uint64_t offset = 0;
    for (const auto& [name, floats] : tensors) {
        nlohmann::ordered_json entry = nlohmann::ordered_json::object();
        entry["dtype"] = "F32";
        entry["shape"] = nlohmann::ordered_json::array({floats});
        entry["data_offsets"] = nlohmann::ordered_json::array({offset, offset + 4 * uint64_t(floats)});
        header[name] = entry;
        offset += 4 * uint64_t(floats);
    }
    std::string json = header.dump();
    std::string out;
    for (int i = 0; i < 8; ++i) out += char((json.size() >> (8 * i)) & 0xff);
    out += json;
    out.append(offset, '\x01');
    return out;
}

const bool g_fixture = [] {
    dlfuzz::write_scratch_file("model-00001-of-00002.safetensors",
                               shard_bytes({{"a.weight", 4}, {"a.bias", 2}}));
    dlfuzz::write_scratch_file("model-00002-of-00002.safetensors",
                               shard_bytes({{"b.weight", 3}, {"b.empty", 0}}));
    return true;
}();

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)g_fixture;
    dlfuzz::write_scratch_file("model.safetensors.index.json", data, size);
    try {
        dl::WeightStore store = dl::WeightStore::open_dir(dlfuzz::scratch_dir());
        for (const std::string& name : store.names()) {
            const dl::TensorView& view = store.view(name);
            if (view.name != name) dlfuzz::fail("index maps '" + name + "' to tensor '" + view.name + "'");
            unsigned sum = 0;
            for (size_t i = 0; i < view.nbytes; ++i) sum += view.data[i];
            (void)sum;
        }
        (void)store.total_bytes();
        (void)store.files();
    } catch (const dl::Error&) {
    }
    return 0;
}
