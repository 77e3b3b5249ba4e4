// fuzz_safetensors: one .safetensors file (8-byte header length, JSON header, data) through
// WeightStore::open_file, which maps and validates it; then every accepted tensor is read back
// (every byte, then as a tensor) to prove that the offsets it accepted lie inside the file.
#include <ATen/ATen.h>

#include "core/common.h"
#include "core/io/safetensors.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = dlfuzz::write_scratch_file("model.safetensors", data, size);
    try {
        dl::WeightStore store = dl::WeightStore::open_file(path);
        int64_t total = 0;
        for (const std::string& name : store.names()) {
            const dl::TensorView& view = store.view(name);
            if (view.nbytes != size_t(view.numel()) * dl::safetensors_dtype_size(view.dtype))
                dlfuzz::fail("tensor '" + name + "': nbytes disagrees with shape x dtype");
            // Every accepted byte must be readable: touch them all.
            unsigned sum = 0;
            for (size_t i = 0; i < view.nbytes; ++i) sum += view.data[i];
            (void)sum;
            total += int64_t(view.nbytes);
            try {
                // Zero-copy view or aligned copy; dtype conversion is LibTorch's business (and slow).
                at::Tensor t = dl::tensor_from_view(view);
                if (t.numel() != view.numel()) dlfuzz::fail("tensor '" + name + "': numel changed");
            } catch (const dl::Error&) {
                // U16/U32/U64/F8_*: documented as not convertible
            }
        }
        if (total != store.total_bytes()) dlfuzz::fail("total_bytes disagrees with the tensors");
    } catch (const dl::Error&) {
    }
    return 0;
}
