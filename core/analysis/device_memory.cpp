// CUDA caching-allocator statistics behind a CPU-safe interface (see device_memory.h). The CUDA
// headers exist only in LibTorch builds with CUDA, so the real code is compiled only there; it
// indexes the stat array with 0 (StatType::AGGREGATE) because the enum moved between 2.x releases.
#include "core/analysis/device_memory.h"

#include <ATen/ATen.h>

// DARTLENS_WITH_CUDA comes from CMake when the LibTorch found was built with CUDA (its torch_cuda
// target exists). Header probing is not enough: Debian's CPU LibTorch ships c10/cuda headers that
// do not compile, and a CUDA toolkit may sit on the include path.
#if defined(DARTLENS_WITH_CUDA) && DARTLENS_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#define DARTLENS_HAVE_CUDA_ALLOCATOR 1
#endif

namespace dl {

namespace {
int cuda_index(const std::string& device) {
    if (device.rfind("cuda", 0) != 0) return -1;
    const size_t colon = device.find(':');
    return colon == std::string::npos ? 0 : std::stoi(device.substr(colon + 1));
}
}  // namespace

#ifdef DARTLENS_HAVE_CUDA_ALLOCATOR
bool device_memory_available() { return at::hasCUDA(); }
void device_memory_reset_peak(const std::string& device) {
    const int index = cuda_index(device);
    if (index >= 0 && at::hasCUDA()) c10::cuda::CUDACachingAllocator::resetPeakStats(index);
}
int64_t device_memory_peak_bytes(const std::string& device) {
    const int index = cuda_index(device);
    if (index < 0 || !at::hasCUDA()) return 0;
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    return stats.allocated_bytes[0].peak;
}
#else
bool device_memory_available() { return false; }
void device_memory_reset_peak(const std::string&) {}
int64_t device_memory_peak_bytes(const std::string& device) {
    (void)cuda_index(device);
    return 0;
}
#endif

}  // namespace dl
