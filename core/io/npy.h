// NumPy .npy files: load any simple little-endian array, save float32 / int64 arrays.
//
// Format: "\x93NUMPY", major, minor, header length (2 bytes LE for v1, 4 bytes for v2/v3), then a
// Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (1, 25, 64), } padded
// with spaces and a newline so the data starts at a multiple of 64, then the raw C-order data.
// Used to read reference dumps and to write tensors for inspection.
#pragma once

#include <ATen/ATen.h>
#include <string>

namespace dl {

// Loads a C-order array with descr '<f4','<f8','<f2','<i8','<i4','<i2','|i1','|u1' or '|b1'
// ('<'/'=' accepted, '>' rejected) into a CPU tensor of the matching dtype. Throws dl::Error
// naming the file for a bad magic, an unparsable header, fortran_order True, an unknown descr, or
// a data size that is not exactly shape x itemsize.
at::Tensor npy_load(const std::string& path);

// Saves a tensor (any device, any strides) as a C-order v1 .npy file, byte-identical to
// numpy.save: float32, int64, and the other dtypes npy_load reads; others throw dl::Error.
void npy_save(const std::string& path, const at::Tensor& t);

}  // namespace dl
