// .npy tests: numpy-written reference files load, npy_save reproduces numpy's bytes, hand-built
// v2/v3 headers parse, and corrupt files fail with the file named.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/common.h"
#include "core/io/npy.h"
#include "core/io/safetensors.h"
#include "test_util.h"

namespace fs = std::filesystem;
using dltest::read_file;
using dltest::reference_dir;
using dltest::scratch_dir;
using dltest::write_file;

namespace {

std::string npy_path(const std::string& name) { return reference_dir() + "/npy/" + name + ".npy"; }

// A hand-built .npy: version major, header text (padded like numpy), raw data.
std::string make_npy(int major, const std::string& dict, const std::string& data) {
    const size_t prefix = major == 1 ? 10 : 12;
    std::string header = dict;
    const size_t total = prefix + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    std::string out = "\x93NUMPY";
    out += static_cast<char>(major);
    out += '\0';
    const size_t len_bytes = major == 1 ? 2 : 4;
    for (size_t i = 0; i < len_bytes; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
    return out + header + data;
}

void expect_load_error(const std::string& path, const std::string& needle) {
    try {
        dl::npy_load(path);
        FAIL() << "no error for " << path;
    } catch (const dl::Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find(path), std::string::npos) << msg;
        EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' not in: " << msg;
    }
}

}  // namespace

TEST(Npy, LoadsReferenceDumps) {
    at::Tensor logits = dl::npy_load(npy_path("logits"));
    EXPECT_EQ(logits.scalar_type(), at::kFloat);
    EXPECT_EQ(logits.sizes(), at::IntArrayRef({1, 25, 320}));
    // README: logits[0,-1,:3] = 0.69191545, 0.76633149, -0.09799731
    EXPECT_FLOAT_EQ(logits[0][24][0].item<float>(), 0.69191545f);
    EXPECT_FLOAT_EQ(logits[0][24][1].item<float>(), 0.76633149f);
    EXPECT_FLOAT_EQ(logits[0][24][2].item<float>(), -0.09799731f);
    at::Tensor ids = dl::npy_load(npy_path("input_ids"));
    EXPECT_EQ(ids.scalar_type(), at::kLong);
    std::vector<int64_t> expect = {1, 21, 34, 55, 317, 89, 144, 233, 13, 37};
    ASSERT_EQ(ids.numel(), 10);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(ids[0][i].item<int64_t>(), expect[i]);
}

TEST(Npy, SaveIsByteIdenticalToNumpy) {
    std::string dir = scratch_dir("npy_save");
    for (const char* name : {"logits", "input_ids", "pixel_values", "generated_new_tokens"}) {
        std::string out = dir + "/" + name + ".npy";
        dl::npy_save(out, dl::npy_load(npy_path(name)));
        EXPECT_TRUE(read_file(out) == read_file(npy_path(name))) << name;
    }
    // Non-contiguous input, 1-d and 0-d shapes round-trip.
    at::Tensor a = at::arange(12, at::kFloat).reshape({3, 4}).t();
    dl::npy_save(dir + "/a.npy", a);
    EXPECT_TRUE(dl::npy_load(dir + "/a.npy").equal(a.contiguous()));
    at::Tensor b = at::arange(7, at::kLong);
    dl::npy_save(dir + "/b.npy", b);
    EXPECT_TRUE(dl::npy_load(dir + "/b.npy").equal(b));
    EXPECT_NE(read_file(dir + "/b.npy").find("'shape': (7,)"), std::string::npos);
    at::Tensor s = at::scalar_tensor(2.5, at::kFloat);
    dl::npy_save(dir + "/s.npy", s);
    at::Tensor s2 = dl::npy_load(dir + "/s.npy");
    EXPECT_EQ(s2.dim(), 0);
    EXPECT_EQ(s2.item<float>(), 2.5f);
    EXPECT_EQ(read_file(dir + "/s.npy").size() % 64, 4u);  // 64-byte header + one float
}

TEST(Npy, VersionTwoAndThreeHeaders) {
    std::string dir = scratch_dir("npy_versions");
    std::string data(6 * 8, '\0');
    for (int i = 0; i < 6; ++i) data[i * 8] = static_cast<char>(i);  // little-endian int64 0..5
    for (int major : {2, 3}) {
        std::string p = dir + dl::str_cat("/v", major, ".npy");
        write_file(p, make_npy(major, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", data));
        at::Tensor t = dl::npy_load(p);
        EXPECT_EQ(t.sizes(), at::IntArrayRef({2, 3}));
        for (int i = 0; i < 6; ++i) EXPECT_EQ(t.view({-1})[i].item<int64_t>(), i);
    }
    // f2, i4, f8 descrs.
    std::string p = dir + "/f2.npy";
    at::Tensor h = at::tensor({1.5f, -2.0f}).to(at::kHalf);
    write_file(p, make_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }",
                           std::string(static_cast<const char*>(h.data_ptr()), 4)));
    EXPECT_TRUE(dl::npy_load(p).equal(h));
    int32_t ints[3] = {-1, 7, 1 << 20};
    write_file(p, make_npy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }",
                           std::string(reinterpret_cast<const char*>(ints), 12)));
    at::Tensor ti = dl::npy_load(p);
    EXPECT_EQ(ti.scalar_type(), at::kInt);
    EXPECT_EQ(ti[2].item<int32_t>(), 1 << 20);
    double d = 0.1;
    write_file(p, make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }",
                           std::string(reinterpret_cast<const char*>(&d), 8)));
    EXPECT_EQ(dl::npy_load(p).item<double>(), 0.1);
}

TEST(Npy, CorruptFilesAreRejected) {
    std::string dir = scratch_dir("npy_corrupt");
    auto put = [&](const std::string& name, const std::string& bytes) {
        std::string p = dir + "/" + name;
        write_file(p, bytes);
        return p;
    };
    const std::string four_floats(16, '\0');
    const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
    ASSERT_EQ(dl::npy_load(put("ok.npy", make_npy(1, ok_dict, four_floats))).numel(), 4);
    expect_load_error(put("empty.npy", ""), "magic");
    expect_load_error(put("magic.npy", "PK\x03\x04 not numpy at all"), "magic");
    expect_load_error(dir + "/absent.npy", "cannot open");
    expect_load_error(put("short.npy", make_npy(1, ok_dict, std::string(12, '\0'))), "needs 16");
    expect_load_error(put("long.npy", make_npy(1, ok_dict, std::string(20, '\0'))), "needs 16");
    expect_load_error(put("fortran.npy", make_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", four_floats)),
                      "fortran_order");
    expect_load_error(put("big.npy", make_npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", four_floats)),
                      "descr");
    expect_load_error(put("obj.npy", make_npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (4,), }", four_floats)),
                      "descr");
    expect_load_error(put("noshape.npy", make_npy(1, "{'descr': '<f4', 'fortran_order': False, }", four_floats)),
                      "shape");
    expect_load_error(put("badshape.npy", make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }", four_floats)),
                      "shape");
    expect_load_error(put("version.npy", "\x93NUMPY\x09\x00\x10\x00{}"), "version");
    {
        std::string b = make_npy(1, ok_dict, four_floats);
        b[8] = static_cast<char>(0xff);
        b[9] = static_cast<char>(0xff);
        expect_load_error(put("hdrlen.npy", b), "header length");
    }
    {
        std::string b = read_file(npy_path("logits"));
        expect_load_error(put("truncated.npy", b.substr(0, b.size() - 100)), "needs");
    }
    EXPECT_THROW(dl::npy_save(dir + "/c.npy", at::zeros({2}, at::kComplexFloat)), dl::Error);
}
