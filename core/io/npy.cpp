// .npy reader/writer (header dict parsed by hand: only the three keys numpy writes).
#include "core/io/npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "core/common.h"

namespace dl {

namespace {

struct NpyType {
    const char* descr;  // without the byte-order character
    at::ScalarType type;
    size_t size;
};
const NpyType k_npy_types[] = {
    {"f4", at::kFloat, 4}, {"f8", at::kDouble, 8}, {"f2", at::kHalf, 2}, {"i8", at::kLong, 8},
    {"i4", at::kInt, 4},   {"i2", at::kShort, 2},  {"i1", at::kChar, 1}, {"u1", at::kByte, 1},
    {"b1", at::kBool, 1},
};

// Value text of 'key' in the header dict, e.g. "'<f4'" or "(1, 25, 64)" or "False".
std::string dict_value(const std::string& header, const std::string& key, const std::string& path) {
    const std::string k = "'" + key + "'";
    size_t p = header.find(k);
    if (p == std::string::npos) throw Error(str_cat(path, ": npy header has no '", key, "' key"));
    p = header.find(':', p + k.size());
    if (p == std::string::npos) throw Error(str_cat(path, ": npy header: no ':' after '", key, "'"));
    ++p;
    while (p < header.size() && header[p] == ' ') ++p;
    if (p >= header.size()) throw Error(str_cat(path, ": npy header: no value for '", key, "'"));
    size_t end;
    if (header[p] == '(') {
        end = header.find(')', p);
        if (end == std::string::npos) throw Error(str_cat(path, ": npy header: unterminated shape"));
        ++end;
    } else if (header[p] == '\'' || header[p] == '"') {
        end = header.find(header[p], p + 1);
        if (end == std::string::npos) throw Error(str_cat(path, ": npy header: unterminated string"));
        ++end;
    } else {
        end = header.find_first_of(",}", p);
        if (end == std::string::npos) throw Error(str_cat(path, ": npy header: unterminated value"));
    }
    return header.substr(p, end - p);
}

}  // namespace

at::Tensor npy_load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(str_cat(path, ": cannot open: ", std::strerror(errno)));
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
        throw Error(str_cat(path, ": not a .npy file (bad magic)"));
    const int major = static_cast<uint8_t>(bytes[6]);
    size_t header_len = 0, header_start = 0;
    if (major == 1) {
        header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
        header_start = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12) throw Error(str_cat(path, ": truncated .npy header"));
        for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(bytes[8 + i]);
        header_start = 12;
    } else {
        throw Error(str_cat(path, ": unsupported .npy version ", major));
    }
    if (header_len > bytes.size() - header_start)
        throw Error(str_cat(path, ": .npy header length ", header_len, " runs past the end of the file"));
    const std::string header = bytes.substr(header_start, header_len);
    if (header.empty() || header[0] != '{') throw Error(str_cat(path, ": .npy header is not a dict"));

    std::string descr = dict_value(header, "descr", path);
    if (descr.size() < 2) throw Error(str_cat(path, ": bad descr ", descr));
    descr = descr.substr(1, descr.size() - 2);
    const std::string fortran = dict_value(header, "fortran_order", path);
    if (fortran == "True") throw Error(str_cat(path, ": fortran_order True is not supported"));
    if (fortran != "False") throw Error(str_cat(path, ": bad fortran_order '", fortran, "'"));
    const std::string shape_text = dict_value(header, "shape", path);

    if (descr.size() != 3 || (descr[0] != '<' && descr[0] != '|' && descr[0] != '='))
        throw Error(str_cat(path, ": unsupported descr '", descr, "' (need little-endian)"));
    const NpyType* type = nullptr;
    for (const auto& t : k_npy_types)
        if (descr.compare(1, 2, t.descr) == 0) type = &t;
    if (!type) throw Error(str_cat(path, ": unsupported descr '", descr, "'"));

    // "(1, 25, 64)", "(5,)", "()"
    if (shape_text.size() < 2 || shape_text.front() != '(' || shape_text.back() != ')')
        throw Error(str_cat(path, ": bad shape '", shape_text, "'"));
    std::vector<int64_t> shape;
    unsigned __int128 count = 1;
    std::string inner = shape_text.substr(1, shape_text.size() - 2);
    size_t p = 0;
    while (p < inner.size()) {
        while (p < inner.size() && (inner[p] == ' ' || inner[p] == ',')) ++p;
        if (p >= inner.size()) break;
        size_t q = p;
        while (q < inner.size() && inner[q] >= '0' && inner[q] <= '9') ++q;
        if (q == p || q - p > 15) throw Error(str_cat(path, ": bad shape '", shape_text, "'"));
        int64_t d = std::stoll(inner.substr(p, q - p));
        shape.push_back(d);
        count *= static_cast<uint64_t>(d);
        if (count > (unsigned __int128)(uint64_t(1) << 50)) throw Error(str_cat(path, ": shape too large"));
        p = q;
        while (p < inner.size() && inner[p] == ' ') ++p;
        if (p < inner.size() && inner[p] != ',') throw Error(str_cat(path, ": bad shape '", shape_text, "'"));
    }

    const size_t data_start = header_start + header_len;
    const size_t need = static_cast<size_t>(count) * type->size;
    const size_t have = bytes.size() - data_start;
    if (have != need)
        throw Error(str_cat(path, ": data is ", have, " bytes but shape ", shape_text, " x ", descr,
                            " needs ", need));
    at::Tensor out = at::empty(shape, at::TensorOptions().dtype(type->type));
    if (need) std::memcpy(out.data_ptr(), bytes.data() + data_start, need);
    return out;
}

void npy_save(const std::string& path, const at::Tensor& t) {
    const NpyType* type = nullptr;
    for (const auto& nt : k_npy_types)
        if (nt.type == t.scalar_type()) type = &nt;
    if (!type) throw Error(str_cat(path, ": npy_save: unsupported dtype ", c10::toString(t.scalar_type())));
    at::Tensor data = t.detach().cpu().contiguous();
    const char order = (type->size == 1) ? '|' : '<';
    std::string shape = "(";
    for (int64_t i = 0; i < data.dim(); ++i) shape += str_cat(i ? ", " : "", data.size(i));
    if (data.dim() == 1) shape += ",";
    shape += ")";
    std::string header = str_cat("{'descr': '", order, type->descr, "', 'fortran_order': False, 'shape': ",
                                 shape, ", }");
    // numpy pads with spaces so that magic + version + length + header + '\n' is a multiple of 64.
    const size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    if (header.size() > 65535) throw Error(str_cat(path, ": npy_save: header too long"));
    std::string out = "\x93NUMPY";
    out += '\x01';
    out += '\x00';
    out += static_cast<char>(header.size() & 0xff);
    out += static_cast<char>(header.size() >> 8);
    out += header;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw Error(str_cat(path, ": cannot create: ", std::strerror(errno)));
    const size_t n = static_cast<size_t>(data.numel()) * data.element_size();
    bool ok = std::fwrite(out.data(), 1, out.size(), f) == out.size();
    if (n) ok = ok && std::fwrite(data.data_ptr(), 1, n, f) == n;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) throw Error(str_cat(path, ": write failed"));
}

}  // namespace dl
