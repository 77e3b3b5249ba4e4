// Peak device (GPU) memory, for `bench` on CUDA. CPU builds (Debian's LibTorch) report nothing.
#pragma once

#include <cstdint>
#include <string>

namespace dl {

// True when this build can read CUDA allocator statistics (LibTorch built with CUDA).
bool device_memory_available();
// Resets / reads the CUDA caching allocator's peak allocated bytes on device `device` ("cuda:N").
// Both do nothing (return 0) for CPU devices or CPU-only builds.
void device_memory_reset_peak(const std::string& device);
int64_t device_memory_peak_bytes(const std::string& device);

}  // namespace dl
