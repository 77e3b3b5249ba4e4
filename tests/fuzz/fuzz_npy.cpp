// fuzz_npy: one .npy file through npy_load. An accepted array must survive npy_save + npy_load
// unchanged (same dtype, shape and bytes): the reader and the writer agree on every header it takes.
#include <ATen/ATen.h>

#include <cstring>

#include "core/common.h"
#include "core/io/npy.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = dlfuzz::write_scratch_file("in.npy", data, size);
    at::Tensor loaded;
    try {
        loaded = dl::npy_load(path);
    } catch (const dl::Error&) {
        return 0;
    }
    const std::string again_path = dlfuzz::scratch_dir() + "/again.npy";
    at::Tensor again;
    try {
        dl::npy_save(again_path, loaded);
        again = dl::npy_load(again_path);
    } catch (const dl::Error& e) {
        dlfuzz::fail(std::string("an array npy_load accepted does not round-trip: ") + e.what());
    }
    if (again.scalar_type() != loaded.scalar_type() || again.sizes() != loaded.sizes())
        dlfuzz::fail("npy round trip changed the dtype or shape");
    const size_t n = size_t(loaded.numel()) * loaded.element_size();
    if (n && std::memcmp(again.data_ptr(), loaded.data_ptr(), n) != 0)
        dlfuzz::fail("npy round trip changed the data");
    return 0;
}
