// Safetensors reader/writer tests: the reference checkpoint, HF byte-exact writing, weight stores
// (single, sharded, ambiguous) and a corrupt file for every check the reader makes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

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

std::string ref_path(const std::string& f) { return reference_dir() + "/" + f; }

// Builds a file by hand: 8-byte LE length + header + data.
std::string make_st(const std::string& header, const std::string& data) {
    std::string out(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out + header + data;
}

// Expects open() to throw a dl::Error whose message contains every needle.
void expect_open_error(const std::string& path, const std::vector<std::string>& needles) {
    try {
        dl::SafetensorsFile::open(path);
        FAIL() << "no error for " << path;
    } catch (const dl::Error& e) {
        std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
    }
}

// Independent reader for checks: the header JSON of a file, parsed straight from the bytes.
nlohmann::json raw_header(const std::string& bytes, size_t* data_start) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
    *data_start = 8 + n;
    return nlohmann::json::parse(bytes.substr(8, n));
}

}  // namespace

TEST(Safetensors, ReadsReferenceCheckpoint) {
    auto f = dl::SafetensorsFile::open(ref_path("model.safetensors"));
    EXPECT_EQ(f->tensors().size(), 73u);
    EXPECT_EQ(f->metadata().at("format"), "pt");
    const std::string bytes = read_file(ref_path("model.safetensors"));
    size_t data_start = 0;
    nlohmann::json h = raw_header(bytes, &data_start);
    int64_t params = 0;
    for (auto it = h.begin(); it != h.end(); ++it) {
        if (it.key() == "__metadata__") continue;
        const dl::TensorView* v = f->find(it.key());
        ASSERT_NE(v, nullptr) << it.key();
        EXPECT_EQ(v->dtype, it.value()["dtype"].get<std::string>());
        EXPECT_EQ(v->shape, it.value()["shape"].get<std::vector<int64_t>>());
        size_t b = it.value()["data_offsets"][0].get<size_t>();
        size_t e = it.value()["data_offsets"][1].get<size_t>();
        EXPECT_EQ(v->nbytes, e - b);
        EXPECT_EQ(std::memcmp(v->data, bytes.data() + data_start + b, e - b), 0) << it.key();
        EXPECT_EQ(v->file, ref_path("model.safetensors"));
        params += v->numel();
    }
    EXPECT_EQ(params, 284736);  // README: 284,736 params
    EXPECT_EQ(f->find("no.such.tensor"), nullptr);
    // tensors() is in data-offset order.
    for (size_t i = 1; i < f->tensors().size(); ++i)
        EXPECT_LT(f->tensors()[i - 1].data, f->tensors()[i].data);
}

TEST(Safetensors, ReferenceOutputsMatchNpyDumps) {
    // Two independent files written by the reference (safetensors and numpy) must agree.
    auto f = dl::SafetensorsFile::open(ref_path("reference_outputs.safetensors"));
    int checked = 0;
    for (const auto& v : f->tensors()) {
        std::string npy = ref_path("npy/" + v.name + ".npy");
        if (!fs::exists(npy)) continue;
        at::Tensor a = dl::tensor_from_view(v);
        at::Tensor b = dl::npy_load(npy);
        EXPECT_TRUE(a.equal(b)) << v.name;
        ++checked;
    }
    EXPECT_GT(checked, 20);
    at::Tensor logits = dl::tensor_from_view(*f->find("logits"));
    EXPECT_FLOAT_EQ(logits[0][-1][0].item<float>(), 0.69191545f);
    at::Tensor ids = dl::tensor_from_view(*f->find("generated_new_tokens"));
    std::vector<int64_t> expect = {315, 221, 119, 304, 147, 279, 38, 147};
    ASSERT_EQ(ids.numel(), 8);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(ids[0][i].item<int64_t>(), expect[i]);
}

TEST(Safetensors, ZeroCopyViewKeepsMappingAlive) {
    at::Tensor t;
    const uint8_t* data = nullptr;
    std::vector<float> first;
    {
        auto store = dl::WeightStore::open_dir(reference_dir());
        const auto& v = store.view("language_model.lm_head.weight");
        data = v.data;
        t = dl::tensor_from_view(v, at::kFloat, at::kCPU);
        EXPECT_EQ(static_cast<const void*>(t.data_ptr()), static_cast<const void*>(v.data));
        const float* p = reinterpret_cast<const float*>(v.data);
        first.assign(p, p + 4);
        // A converting request copies.
        at::Tensor d = dl::tensor_from_store(store, "language_model.lm_head.weight", at::kDouble, at::kCPU);
        EXPECT_NE(static_cast<const void*>(d.data_ptr()), static_cast<const void*>(v.data));
        EXPECT_TRUE(d.to(at::kFloat).equal(t));
    }
    // The store (and its files) are gone; the tensor still owns the mapping.
    EXPECT_EQ(static_cast<const void*>(t.data_ptr()), static_cast<const void*>(data));
    EXPECT_EQ(t.sizes(), at::IntArrayRef({320, 64}));
    for (int i = 0; i < 4; ++i) EXPECT_EQ(t[0][i].item<float>(), first[i]);
    EXPECT_TRUE(std::isfinite(t.sum().item<float>()));
}

TEST(Safetensors, F16UpcastEqualsF32RoundedThroughHalf) {
    auto f32 = dl::WeightStore::open_dir(reference_dir());
    auto f16 = dl::WeightStore::open_file(ref_path("model_fp16.safetensors"));
    ASSERT_EQ(f32.names().size(), f16.names().size());
    for (const auto& name : f32.names()) {
        ASSERT_EQ(f16.view(name).dtype, "F16");
        at::Tensor a = dl::tensor_from_store(f16, name, at::kFloat, at::kCPU);
        at::Tensor b = dl::tensor_from_store(f32, name, at::kFloat, at::kCPU).to(at::kHalf).to(at::kFloat);
        EXPECT_EQ(a.scalar_type(), at::kFloat);
        EXPECT_TRUE(a.equal(b)) << name;
    }
    EXPECT_EQ(f16.total_bytes() * 2, f32.total_bytes());
    EXPECT_EQ(f32.total_bytes(), 284736 * 4);
}

TEST(Safetensors, WriterIsByteIdenticalToHuggingFace) {
    // The two checkpoints were written by save_pretrained (single dtype, so the order is by name).
    std::string dir = scratch_dir("st_writer");
    for (const char* name : {"model.safetensors", "model_fp16.safetensors"}) {
        auto f = dl::SafetensorsFile::open(ref_path(name));
        std::vector<std::pair<std::string, at::Tensor>> tensors;
        // Reverse order on purpose: the writer must sort as HF does.
        for (auto it = f->tensors().rbegin(); it != f->tensors().rend(); ++it)
            tensors.emplace_back(it->name, dl::tensor_from_view(*it));
        std::string out = dir + "/" + name;
        dl::write_safetensors(out, tensors, f->metadata());
        EXPECT_FALSE(fs::exists(out + ".tmp"));
        EXPECT_TRUE(read_file(out) == read_file(ref_path(name))) << name << " differs from HF's bytes";
    }
    // Mixed dtypes (written by a name-sorted writer): values round-trip.
    auto f = dl::SafetensorsFile::open(ref_path("reference_outputs.safetensors"));
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const auto& v : f->tensors()) tensors.emplace_back(v.name, dl::tensor_from_view(v));
    dl::write_safetensors(dir + "/outputs.safetensors", tensors, f->metadata());
    auto g = dl::SafetensorsFile::open(dir + "/outputs.safetensors");
    ASSERT_EQ(g->tensors().size(), f->tensors().size());
    EXPECT_EQ(g->metadata(), f->metadata());
    for (const auto& v : f->tensors()) {
        const dl::TensorView* w = g->find(v.name);
        ASSERT_NE(w, nullptr) << v.name;
        EXPECT_EQ(w->dtype, v.dtype);
        EXPECT_EQ(w->shape, v.shape);
        EXPECT_EQ(std::memcmp(w->data, v.data, v.nbytes), 0) << v.name;
    }
}

TEST(Safetensors, WriterRoundTripsMixedDtypesAndStrides) {
    std::string path = scratch_dir("st_mixed") + "/x.safetensors";
    at::Tensor a = at::arange(12, at::kFloat).reshape({3, 4}).t();  // non-contiguous
    at::Tensor b = at::arange(5, at::kLong);
    at::Tensor c = at::arange(6, at::kFloat).to(at::kBFloat16);
    at::Tensor d = at::empty({0, 3}, at::kFloat);
    dl::write_safetensors(path, {{"a", a}, {"b", b}, {"c", c}, {"d", d}}, {{"k", "v"}});
    std::string bytes = read_file(path);
    size_t data_start = 0;
    raw_header(bytes, &data_start);
    EXPECT_EQ(data_start % 8, 0u);
    auto f = dl::SafetensorsFile::open(path);
    EXPECT_EQ(f->metadata().at("k"), "v");
    EXPECT_TRUE(dl::tensor_from_view(*f->find("a")).equal(a));
    EXPECT_TRUE(dl::tensor_from_view(*f->find("b")).equal(b));
    EXPECT_TRUE(dl::tensor_from_view(*f->find("c")).equal(c));
    EXPECT_EQ(dl::tensor_from_view(*f->find("d")).sizes(), at::IntArrayRef({0, 3}));
    EXPECT_EQ(f->find("b")->dtype, "I64");
    EXPECT_EQ(f->find("c")->dtype, "BF16");
    // I64 sorts before F32 (HF orders by dtype, widest-declared first).
    EXPECT_LT(f->find("b")->data, f->find("a")->data);
    EXPECT_THROW(dl::write_safetensors(path, {{"a", a}, {"a", b}}), dl::Error);
}

TEST(Safetensors, CorruptFilesAreRejectedWithNames) {
    std::string dir = scratch_dir("st_corrupt");
    auto put = [&](const std::string& name, const std::string& bytes) {
        std::string p = dir + "/" + name;
        write_file(p, bytes);
        return p;
    };
    const std::string f32x2 = std::string(8, '\0');
    expect_open_error(put("empty.safetensors", ""), {"empty.safetensors", "0 bytes"});
    expect_open_error(put("seven.safetensors", "1234567"), {"seven.safetensors"});
    expect_open_error(dir + "/absent.safetensors", {"absent.safetensors", "cannot open"});
    {   // header length larger than the file
        std::string b = make_st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32x2);
        b[0] = static_cast<char>(0xff); b[1] = static_cast<char>(0x7f);
        expect_open_error(put("hdrlen.safetensors", b), {"hdrlen.safetensors", "header length"});
    }
    {   // absurd header length (8 bytes of 0xff)
        std::string b = std::string(8, static_cast<char>(0xff)) + "{}";
        expect_open_error(put("huge.safetensors", b), {"huge.safetensors", "header length"});
    }
    expect_open_error(put("json.safetensors", make_st(R"({"a":{"dtype":"F32",)", f32x2)),
                      {"json.safetensors", "JSON"});
    expect_open_error(put("array.safetensors", make_st(R"([1,2])", "")), {"array.safetensors"});
    expect_open_error(put("oob.safetensors", make_st(R"({"w.x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", f32x2)),
                      {"oob.safetensors", "'w.x'", "beyond data size 8"});
    expect_open_error(put("order.safetensors", make_st(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", f32x2)),
                      {"order.safetensors", "'w'", "begin > end"});
    expect_open_error(put("overlap.safetensors",
                          make_st(R"({"first":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                  R"("second":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f32x2)),
                      {"overlap.safetensors", "'second'", "overlaps", "'first'"});
    expect_open_error(put("size.safetensors", make_st(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2)),
                      {"size.safetensors", "'w'", "needs 12"});
    expect_open_error(put("dtype.safetensors", make_st(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", f32x2)),
                      {"dtype.safetensors", "'w'", "unknown dtype 'F33'"});
    expect_open_error(put("neg.safetensors", make_st(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32x2)),
                      {"neg.safetensors", "'w'", "shape"});
    expect_open_error(put("fshape.safetensors", make_st(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", f32x2)),
                      {"fshape.safetensors", "'w'", "shape"});
    expect_open_error(put("noshape.safetensors", make_st(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", f32x2)),
                      {"noshape.safetensors", "'w'", "shape"});
    expect_open_error(put("nooff.safetensors", make_st(R"({"w":{"dtype":"F32","shape":[2]}})", f32x2)),
                      {"nooff.safetensors", "'w'", "data_offsets"});
    expect_open_error(put("negoff.safetensors", make_st(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", f32x2)),
                      {"negoff.safetensors", "'w'", "offset"});
    expect_open_error(put("meta.safetensors", make_st(R"({"__metadata__":{"format":1}})", "")),
                      {"meta.safetensors", "__metadata__", "format"});
    expect_open_error(put("meta2.safetensors", make_st(R"({"__metadata__":[1]})", "")),
                      {"meta2.safetensors", "__metadata__"});
    expect_open_error(put("entry.safetensors", make_st(R"({"w":5})", "")), {"entry.safetensors", "'w'"});
    {   // a truncated copy of the real checkpoint
        std::string b = read_file(ref_path("model.safetensors"));
        expect_open_error(put("truncated.safetensors", b.substr(0, b.size() / 2)),
                          {"truncated.safetensors", "beyond data size"});
        expect_open_error(put("truncated_header.safetensors", b.substr(0, 100)),
                          {"truncated_header.safetensors", "header length"});
    }
    // A minimal valid file still opens (the checks are not over-eager).
    auto ok = dl::SafetensorsFile::open(put("ok.safetensors", make_st(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32x2)));
    EXPECT_EQ(ok->tensors().size(), 1u);
}

TEST(WeightStore, ShardedIndexAndErrors) {
    auto ref_file = dl::SafetensorsFile::open(ref_path("model.safetensors"));
    std::string dir = scratch_dir("st_sharded");
    const auto& all = ref_file->tensors();
    nlohmann::json map = nlohmann::json::object();
    for (int s = 0; s < 3; ++s) {
        std::string shard = dl::str_cat("model-0000", s + 1, "-of-00003.safetensors");
        std::vector<std::pair<std::string, at::Tensor>> part;
        for (size_t i = s; i < all.size(); i += 3) {
            part.emplace_back(all[i].name, dl::tensor_from_view(all[i]));
            map[all[i].name] = shard;
        }
        dl::write_safetensors(dir + "/" + shard, part, {{"format", "pt"}});
    }
    nlohmann::json index = {{"metadata", {{"total_size", 284736 * 4}}}, {"weight_map", map}};
    write_file(dir + "/model.safetensors.index.json", index.dump(2));

    auto store = dl::WeightStore::open_dir(dir);
    EXPECT_EQ(store.files().size(), 3u);
    EXPECT_EQ(store.names().size(), 73u);
    EXPECT_EQ(store.total_bytes(), 284736 * 4);
    EXPECT_EQ(store.dir(), dir);
    for (const auto& v : all) {
        ASSERT_TRUE(store.has(v.name));
        const auto& w = store.view(v.name);
        EXPECT_NE(w.file.find("-of-00003.safetensors"), std::string::npos);
        ASSERT_EQ(w.nbytes, v.nbytes);
        EXPECT_EQ(std::memcmp(w.data, v.data, v.nbytes), 0) << v.name;
    }
    try {
        store.view("language_model.nope.weight");
        FAIL();
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find("language_model.nope.weight"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find(dir), std::string::npos);
    }

    // A tensor mapped to a shard that does not hold it.
    nlohmann::json bad = index;
    bad["weight_map"]["extra.weight"] = "model-00002-of-00003.safetensors";
    write_file(dir + "/model.safetensors.index.json", bad.dump());
    try {
        dl::WeightStore::open_dir(dir);
        FAIL();
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find("extra.weight"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("model-00002-of-00003.safetensors"), std::string::npos) << e.what();
    }
    // A missing shard.
    write_file(dir + "/model.safetensors.index.json", index.dump());
    fs::remove(dir + "/model-00003-of-00003.safetensors");
    try {
        dl::WeightStore::open_dir(dir);
        FAIL();
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find("model-00003-of-00003.safetensors"), std::string::npos) << e.what();
    }
    // Broken index JSON.
    write_file(dir + "/model.safetensors.index.json", "{\"weight_map\": ");
    try {
        dl::WeightStore::open_dir(dir);
        FAIL();
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find("model.safetensors.index.json"), std::string::npos) << e.what();
    }
}

TEST(WeightStore, DirectoryFileChoice) {
    // The reference dir has model.safetensors plus two other files: model.safetensors wins.
    auto store = dl::WeightStore::open_dir(reference_dir());
    EXPECT_EQ(store.files(), std::vector<std::string>{reference_dir() + "/model.safetensors"});
    EXPECT_EQ(store.names().size(), 73u);
    EXPECT_EQ(store.names().front(), "language_model.lm_head.weight");

    std::string dir = scratch_dir("st_choice");
    EXPECT_THROW(dl::WeightStore::open_dir(dir), dl::Error);                 // nothing there
    EXPECT_THROW(dl::WeightStore::open_dir(dir + "/missing"), dl::Error);    // not a dir
    fs::copy_file(ref_path("model_fp16.safetensors"), dir + "/weights.safetensors");
    auto one = dl::WeightStore::open_dir(dir);                               // the only file
    EXPECT_EQ(one.view("language_model.lm_head.weight").dtype, "F16");
    fs::copy_file(ref_path("model_fp16.safetensors"), dir + "/other.safetensors");
    try {
        dl::WeightStore::open_dir(dir);
        FAIL();
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find("other.safetensors"), std::string::npos) << e.what();
    }
}

TEST(Safetensors, DtypeTables) {
    EXPECT_EQ(dl::safetensors_dtype_size("BF16"), 2u);
    EXPECT_EQ(dl::safetensors_dtype_size("I64"), 8u);
    EXPECT_EQ(dl::safetensors_dtype_size("X"), 0u);
    EXPECT_EQ(dl::safetensors_dtype_to_scalar("F16"), at::kHalf);
    EXPECT_THROW(dl::safetensors_dtype_to_scalar("U16"), dl::Error);
    EXPECT_EQ(dl::scalar_to_safetensors_dtype(at::kBFloat16), "BF16");
}

TEST(Safetensors, MutatedHeadersNeverCrash) {
    // Deterministic byte flips in the length and header of a real file: each open either fails
    // with dl::Error or yields views that lie inside the file.
    std::string dir = scratch_dir("st_fuzz");
    const std::string good = read_file(ref_path("model_fp16.safetensors"));
    const std::string small = good.substr(0, 8 + 600);  // a header prefix only: mostly invalid
    uint64_t state = 12345;
    auto next = [&]() { state = state * 6364136223846793005ULL + 1442695040888963407ULL; return state >> 33; };
    int opened = 0, rejected = 0;
    for (int iter = 0; iter < 400; ++iter) {
        std::string b = (iter % 4 == 0) ? small : good;
        const size_t span = std::min<size_t>(b.size(), 8 + 8752);
        for (int k = 0; k < 1 + static_cast<int>(next() % 3); ++k) b[next() % span] = static_cast<char>(next() & 0xff);
        std::string p = dir + "/f.safetensors";
        write_file(p, b);
        try {
            auto f = dl::SafetensorsFile::open(p);
            size_t total = 0;
            unsigned sum = 0;
            for (const auto& v : f->tensors()) {  // touching every byte must stay inside the map
                total += v.nbytes;
                for (size_t i = 0; i < v.nbytes; ++i) sum += v.data[i];
            }
            EXPECT_LE(total, b.size());
            (void)sum;
            ++opened;
        } catch (const dl::Error& e) {
            EXPECT_NE(std::string(e.what()).find(p), std::string::npos);
            ++rejected;
        }
    }
    EXPECT_GT(rejected, 100);
}
