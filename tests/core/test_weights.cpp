// Weight loading tests: the reference checkpoint (layout A, F32 and F16), layouts B and C and a
// sharded copy built from weight_name_variants.tsv, zero-copy mapping, and one error per defect.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/common.h"
#include "core/io/config.h"
#include "core/io/safetensors.h"
#include "core/io/weights.h"
#include "test_util.h"

namespace fs = std::filesystem;
using dltest::read_file;
using dltest::reference_dir;
using dltest::scratch_dir;
using dltest::write_file;
using Named = std::vector<std::pair<std::string, at::Tensor>>;

namespace {

std::string ref_path(const std::string& f) { return reference_dir() + "/" + f; }

dl::LlavaConfig ref_config() { return dl::LlavaConfig::from_file(ref_path("config.json")); }

// The loaded struct as (canonical name, tensor) pairs, written out by hand from weight_names.txt.
Named flatten(const dl::LlavaWeights& w) {
    Named out;
    const std::string vp = "vision_tower.vision_model.";
    out.emplace_back(vp + "embeddings.class_embedding", w.vision.class_embedding);
    out.emplace_back(vp + "embeddings.patch_embedding.weight", w.vision.patch_embedding);
    out.emplace_back(vp + "embeddings.position_embedding.weight", w.vision.position_embedding);
    out.emplace_back(vp + "pre_layrnorm.weight", w.vision.pre_ln_w);
    out.emplace_back(vp + "pre_layrnorm.bias", w.vision.pre_ln_b);
    for (size_t l = 0; l < w.vision.layers.size(); ++l) {
        const auto& L = w.vision.layers[l];
        const std::string p = dl::str_cat(vp, "encoder.layers.", l, ".");
        out.emplace_back(p + "self_attn.k_proj.weight", L.k_w);
        out.emplace_back(p + "self_attn.k_proj.bias", L.k_b);
        out.emplace_back(p + "self_attn.v_proj.weight", L.v_w);
        out.emplace_back(p + "self_attn.v_proj.bias", L.v_b);
        out.emplace_back(p + "self_attn.q_proj.weight", L.q_w);
        out.emplace_back(p + "self_attn.q_proj.bias", L.q_b);
        out.emplace_back(p + "self_attn.out_proj.weight", L.o_w);
        out.emplace_back(p + "self_attn.out_proj.bias", L.o_b);
        out.emplace_back(p + "layer_norm1.weight", L.ln1_w);
        out.emplace_back(p + "layer_norm1.bias", L.ln1_b);
        out.emplace_back(p + "mlp.fc1.weight", L.fc1_w);
        out.emplace_back(p + "mlp.fc1.bias", L.fc1_b);
        out.emplace_back(p + "mlp.fc2.weight", L.fc2_w);
        out.emplace_back(p + "mlp.fc2.bias", L.fc2_b);
        out.emplace_back(p + "layer_norm2.weight", L.ln2_w);
        out.emplace_back(p + "layer_norm2.bias", L.ln2_b);
    }
    if (w.vision.post_ln_w.defined()) {
        out.emplace_back(vp + "post_layernorm.weight", w.vision.post_ln_w);
        out.emplace_back(vp + "post_layernorm.bias", w.vision.post_ln_b);
    }
    out.emplace_back("multi_modal_projector.linear_1.weight", w.projector.l1_w);
    out.emplace_back("multi_modal_projector.linear_1.bias", w.projector.l1_b);
    out.emplace_back("multi_modal_projector.linear_2.weight", w.projector.l2_w);
    out.emplace_back("multi_modal_projector.linear_2.bias", w.projector.l2_b);
    out.emplace_back("language_model.model.embed_tokens.weight", w.text.embed_tokens);
    for (size_t l = 0; l < w.text.layers.size(); ++l) {
        const auto& L = w.text.layers[l];
        const std::string p = dl::str_cat("language_model.model.layers.", l, ".");
        out.emplace_back(p + "self_attn.q_proj.weight", L.q_w);
        out.emplace_back(p + "self_attn.k_proj.weight", L.k_w);
        out.emplace_back(p + "self_attn.v_proj.weight", L.v_w);
        out.emplace_back(p + "self_attn.o_proj.weight", L.o_w);
        out.emplace_back(p + "mlp.gate_proj.weight", L.gate_w);
        out.emplace_back(p + "mlp.up_proj.weight", L.up_w);
        out.emplace_back(p + "mlp.down_proj.weight", L.down_w);
        out.emplace_back(p + "input_layernorm.weight", L.input_norm);
        out.emplace_back(p + "post_attention_layernorm.weight", L.post_norm);
    }
    out.emplace_back("language_model.model.norm.weight", w.text.norm);
    out.emplace_back("language_model.lm_head.weight", w.text.lm_head);
    return out;
}

bool is_norm_or_bias(const std::string& name) {
    return name.find("norm") != std::string::npos || name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
}

// weight_name_variants.tsv: columns A, B, C, shape.
std::vector<std::vector<std::string>> variants() {
    std::istringstream in(read_file(ref_path("weight_name_variants.tsv")));
    std::vector<std::vector<std::string>> rows;
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::vector<std::string> cols;
        std::stringstream ls(line);
        std::string c;
        while (std::getline(ls, c, '\t')) cols.push_back(c);
        if (cols.size() >= 3) rows.push_back(cols);
    }
    return rows;
}

// The reference tensors (raw, as stored) by canonical name.
Named reference_tensors(const std::string& file = "model.safetensors") {
    auto f = dl::SafetensorsFile::open(ref_path(file));
    Named out;
    for (const auto& v : f->tensors()) out.emplace_back(v.name, dl::tensor_from_view(v).clone());
    return out;
}

// Raw bytes of a tensor in a safetensors file, found by parsing the header independently.
std::string raw_bytes(const std::string& file_bytes, const std::string& name) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(file_bytes[i]);
    auto h = nlohmann::json::parse(file_bytes.substr(8, n));
    size_t b = h[name]["data_offsets"][0], e = h[name]["data_offsets"][1];
    return file_bytes.substr(8 + n + b, e - b);
}

dl::LlavaWeights load_dir(const std::string& dir, at::ScalarType dtype = at::kFloat) {
    auto store = dl::WeightStore::open_dir(dir);
    return dl::load_llava_weights(store, ref_config(), dtype, at::kCPU);
}

// Writes `tensors` renamed through column `col` of the tsv into dir/model.safetensors.
void write_layout(const std::string& dir, int col, const Named& tensors, const std::string& file = "model.safetensors") {
    std::map<std::string, std::string> rename;
    for (const auto& row : variants()) rename[row[0]] = row[col];
    Named out;
    for (const auto& [name, t] : tensors) out.emplace_back(rename.count(name) ? rename[name] : name, t);
    dl::write_safetensors(dir + "/" + file, out, {{"format", "pt"}});
}

std::string load_error(const std::string& dir, const dl::LlavaConfig& config) {
    try {
        auto store = dl::WeightStore::open_dir(dir);
        dl::load_llava_weights(store, config, at::kFloat, at::kCPU);
    } catch (const dl::Error& e) {
        std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        return msg;
    }
    ADD_FAILURE() << "no error for " << dir;
    return "";
}

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

}  // namespace

TEST(Weights, CanonicalNamesMatchHuggingFaceStateDict) {
    std::istringstream in(read_file(ref_path("weight_names.txt")));
    std::vector<std::string> expect;
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) expect.push_back(line.substr(0, line.find('\t')));
    EXPECT_EQ(dl::canonical_weight_names(ref_config()), expect);
}

TEST(Weights, ClipLayersNeeded) {
    dl::LlavaConfig c = ref_config();
    EXPECT_EQ(dl::clip_layers_needed(c), 1);  // README: -2 of 2 layers -> layer 0's output
    c.vision.num_hidden_layers = 24;
    EXPECT_EQ(dl::clip_layers_needed(c), 23);
    c.vision_feature_layers = {-1};
    EXPECT_EQ(dl::clip_layers_needed(c), 24);
    c.vision_feature_layers = {5};
    EXPECT_EQ(dl::clip_layers_needed(c), 5);
}

TEST(Weights, LoadsReferenceLayoutAZeroCopy) {
    auto store = dl::WeightStore::open_dir(reference_dir());
    dl::LlavaWeights w = dl::load_llava_weights(store, ref_config(), at::kFloat, at::kCPU);
    EXPECT_EQ(w.layout, "llava-hf");
    EXPECT_EQ(w.stored_dtype, "F32");
    EXPECT_EQ(w.num_parameters, 284736);
    EXPECT_EQ(w.stored_bytes, 284736 * 4);
    EXPECT_EQ(w.vision.layers.size(), 1u);  // the last CLIP layer is not needed
    EXPECT_EQ(w.text.layers.size(), 3u);
    const std::string bytes = read_file(ref_path("model.safetensors"));
    Named flat = flatten(w);
    EXPECT_EQ(flat.size(), 73u - 16u);  // 16 tensors of the unused CLIP layer 1
    for (const auto& [name, t] : flat) {
        ASSERT_TRUE(t.defined()) << name;
        EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
        EXPECT_TRUE(t.device().is_cpu());
        std::string raw = raw_bytes(bytes, name);
        ASSERT_EQ(raw.size(), static_cast<size_t>(t.numel()) * 4) << name;
        EXPECT_EQ(std::memcmp(raw.data(), t.data_ptr(), raw.size()), 0) << name;
        // Zero-copy: the tensor's data lies inside the mapping, at the tensor's own bytes.
        EXPECT_EQ(static_cast<const void*>(t.data_ptr()), static_cast<const void*>(store.view(name).data)) << name;
    }
    // Shapes as weight_names.txt lists them (a few).
    EXPECT_EQ(w.text.layers[0].k_w.sizes(), at::IntArrayRef({32, 64}));
    EXPECT_EQ(w.vision.patch_embedding.sizes(), at::IntArrayRef({64, 3, 14, 14}));
    EXPECT_EQ(w.vision.position_embedding.sizes(), at::IntArrayRef({17, 64}));
    EXPECT_EQ(w.text.lm_head.sizes(), at::IntArrayRef({320, 64}));
}

TEST(Weights, ZeroCopyTensorsOutliveStore) {
    dl::LlavaWeights w;
    {
        auto store = dl::WeightStore::open_dir(reference_dir());
        w = dl::load_llava_weights(store, ref_config(), at::kFloat, at::kCPU);
    }
    // The store is gone; the tensors keep their mappings alive.
    const std::string bytes = read_file(ref_path("model.safetensors"));
    std::string raw = raw_bytes(bytes, "language_model.lm_head.weight");
    EXPECT_EQ(std::memcmp(raw.data(), w.text.lm_head.data_ptr(), raw.size()), 0);
}

TEST(Weights, ComputeDtypeAppliesToMatricesOnly) {
    dl::LlavaWeights w = load_dir(reference_dir(), at::kBFloat16);
    Named bf = flatten(w), f32 = flatten(load_dir(reference_dir()));
    ASSERT_EQ(bf.size(), f32.size());
    for (size_t i = 0; i < bf.size(); ++i) {
        const auto& [name, t] = bf[i];
        const bool keep_f32 = is_norm_or_bias(name);
        EXPECT_EQ(t.scalar_type(), keep_f32 ? at::kFloat : at::kBFloat16) << name;
        EXPECT_TRUE(t.equal(keep_f32 ? f32[i].second : f32[i].second.to(at::kBFloat16))) << name;
    }
}

TEST(Weights, Fp16CheckpointUpcastsToRoundedF32) {
    std::string dir = scratch_dir("w_fp16");
    fs::copy_file(ref_path("model_fp16.safetensors"), dir + "/model.safetensors");
    fs::copy_file(ref_path("config.json"), dir + "/config.json");
    dl::LlavaWeights h = load_dir(dir);
    EXPECT_EQ(h.stored_dtype, "F16");
    Named a = flatten(h), b = flatten(load_dir(reference_dir()));
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].second.scalar_type(), at::kFloat) << a[i].first;
        EXPECT_TRUE(a[i].second.equal(b[i].second.to(at::kHalf).to(at::kFloat))) << a[i].first;
    }
    // Requesting f16 keeps the stored halves without conversion (zero-copy), norms upcast.
    auto store = dl::WeightStore::open_dir(dir);
    dl::LlavaWeights z = dl::load_llava_weights(store, ref_config(), at::kHalf, at::kCPU);
    EXPECT_EQ(z.text.embed_tokens.scalar_type(), at::kHalf);
    EXPECT_EQ(static_cast<const void*>(z.text.embed_tokens.data_ptr()),
              static_cast<const void*>(store.view("language_model.model.embed_tokens.weight").data));
    EXPECT_EQ(z.text.norm.scalar_type(), at::kFloat);
}

TEST(Weights, LayoutsBAndCAndShardedLoadBitIdentical) {
    const Named ref = reference_tensors();
    const Named expect = flatten(load_dir(reference_dir()));
    struct Case { const char* label; int col; };
    for (Case c : {Case{"transformers>=4.52", 1}, Case{"original-llava", 2}}) {
        std::string dir = scratch_dir(dl::str_cat("w_layout", c.col));
        write_layout(dir, c.col, ref);
        auto store = dl::WeightStore::open_dir(dir);
        dl::LlavaWeights w = dl::load_llava_weights(store, ref_config(), at::kFloat, at::kCPU);
        EXPECT_EQ(w.layout, c.label);
        Named got = flatten(w);
        ASSERT_EQ(got.size(), expect.size());
        for (size_t i = 0; i < got.size(); ++i)
            EXPECT_TRUE(got[i].second.equal(expect[i].second)) << c.label << " " << got[i].first;
    }
    // Sharded (layout A): 3 shards + index.
    std::string dir = scratch_dir("w_sharded");
    nlohmann::json map = nlohmann::json::object();
    for (int s = 0; s < 3; ++s) {
        Named part;
        std::string shard = dl::str_cat("model-0000", s + 1, "-of-00003.safetensors");
        for (size_t i = s; i < ref.size(); i += 3) {
            part.push_back(ref[i]);
            map[ref[i].first] = shard;
        }
        dl::write_safetensors(dir + "/" + shard, part, {{"format", "pt"}});
    }
    write_file(dir + "/model.safetensors.index.json", nlohmann::json({{"weight_map", map}}).dump());
    Named got = flatten(load_dir(dir));
    ASSERT_EQ(got.size(), expect.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(got[i].second.equal(expect[i].second)) << got[i].first;
    // Missing shard names the shard.
    fs::remove(dir + "/model-00002-of-00003.safetensors");
    EXPECT_TRUE(contains(load_error(dir, ref_config()), "model-00002-of-00003.safetensors"));
}

TEST(Weights, IgnoresBuffersAndOptionalTensors) {
    Named t = reference_tensors();
    t.emplace_back("vision_tower.vision_model.embeddings.position_ids", at::arange(17, at::kLong).unsqueeze(0));
    t.emplace_back("language_model.model.layers.0.self_attn.rotary_emb.inv_freq", at::ones({8}));
    // Drop the unused last CLIP layer and post_layernorm: still loads.
    Named kept;
    for (auto& p : t)
        if (!contains(p.first, "encoder.layers.1.") && !contains(p.first, "post_layernorm")) kept.push_back(p);
    std::string dir = scratch_dir("w_buffers");
    dl::write_safetensors(dir + "/model.safetensors", kept);
    dl::LlavaWeights w = load_dir(dir);
    EXPECT_FALSE(w.vision.post_ln_w.defined());
    EXPECT_EQ(w.vision.layers.size(), 1u);
}

TEST(Weights, TiedEmbeddings) {
    Named t;
    for (auto& p : reference_tensors())
        if (p.first != "language_model.lm_head.weight") t.push_back(p);
    std::string dir = scratch_dir("w_tied");
    dl::write_safetensors(dir + "/model.safetensors", t);
    dl::LlavaConfig c = ref_config();
    EXPECT_TRUE(contains(load_error(dir, c), "language_model.lm_head.weight"));  // untied: missing
    c.text.tie_word_embeddings = true;
    auto store = dl::WeightStore::open_dir(dir);
    dl::LlavaWeights w = dl::load_llava_weights(store, c, at::kFloat, at::kCPU);
    EXPECT_TRUE(w.text.lm_head.is_same(w.text.embed_tokens));
    EXPECT_EQ(w.num_parameters, 284736 - 320 * 64);
    EXPECT_EQ(dl::canonical_weight_names(c).size(), 72u);
}

TEST(Weights, ReportsEveryProblemByName) {
    const Named ref = reference_tensors();
    auto write_with = [&](const std::string& name, const std::function<void(Named&)>& edit) {
        Named t = ref;
        edit(t);
        std::string dir = scratch_dir(name);
        dl::write_safetensors(dir + "/model.safetensors", t, {{"format", "pt"}});
        return dir;
    };
    auto erase = [](Named& t, const std::string& name) {
        t.erase(std::remove_if(t.begin(), t.end(), [&](auto& p) { return p.first == name; }), t.end());
    };
    auto replace = [](Named& t, const std::string& name, at::Tensor v) {
        for (auto& p : t)
            if (p.first == name) p.second = v;
    };
    const dl::LlavaConfig c = ref_config();

    std::string msg = load_error(write_with("w_missing", [&](Named& t) { erase(t, "language_model.model.layers.1.mlp.up_proj.weight"); }), c);
    EXPECT_TRUE(contains(msg, "1 missing: language_model.model.layers.1.mlp.up_proj.weight")) << msg;

    msg = load_error(write_with("w_shape", [&](Named& t) {
        replace(t, "language_model.model.layers.2.self_attn.k_proj.weight", at::zeros({64, 64}));
    }), c);
    EXPECT_TRUE(contains(msg, "language_model.model.layers.2.self_attn.k_proj.weight [64,64] expected [32,64]")) << msg;

    msg = load_error(write_with("w_dtype", [&](Named& t) {
        replace(t, "multi_modal_projector.linear_1.weight", at::zeros({64, 64}, at::kLong));
    }), c);
    EXPECT_TRUE(contains(msg, "multi_modal_projector.linear_1.weight I64")) << msg;

    msg = load_error(write_with("w_unexpected", [&](Named& t) { t.emplace_back("language_model.model.extra.weight", at::zeros({2})); }), c);
    EXPECT_TRUE(contains(msg, "unexpected: language_model.model.extra.weight")) << msg;

    // Several problems at once, and a long list is cut with "and N more".
    msg = load_error(write_with("w_many", [&](Named& t) {
        Named keep;
        for (auto& p : t)
            if (!contains(p.first, "language_model.model.layers.")) keep.push_back(p);
        t = keep;
        replace(t, "language_model.model.norm.weight", at::zeros({65}));
    }), c);
    EXPECT_TRUE(contains(msg, "27 missing: language_model.model.layers.0.self_attn.q_proj.weight")) << msg;
    EXPECT_TRUE(contains(msg, "and 17 more")) << msg;
    EXPECT_TRUE(contains(msg, "language_model.model.norm.weight [65] expected [64]")) << msg;

    // Config that does not fit the checkpoint (vocab).
    dl::LlavaConfig wrong = c;
    wrong.text.vocab_size = 321;
    msg = load_error(reference_dir(), wrong);
    EXPECT_TRUE(contains(msg, "language_model.model.embed_tokens.weight [320,64] expected [321,64]")) << msg;
    EXPECT_TRUE(contains(msg, reference_dir())) << msg;

    // Unknown layout.
    msg = load_error(write_with("w_layout", [&](Named& t) { erase(t, "language_model.model.embed_tokens.weight"); }), c);
    EXPECT_TRUE(contains(msg, "embed_tokens")) << msg;
}

TEST(Weights, LayoutCWithoutVisionTower) {
    Named t;
    for (auto& p : reference_tensors())
        if (!contains(p.first, "vision_tower.")) t.push_back(p);
    std::string dir = scratch_dir("w_c_novision");
    write_layout(dir, 2, t);
    std::string msg = load_error(dir, ref_config());
    EXPECT_TRUE(contains(msg, "vision tower is missing")) << msg;
    EXPECT_TRUE(contains(msg, "model.vision_tower.vision_tower.")) << msg;
}

TEST(Weights, CorruptFilesNameTheFile) {
    const std::string good = read_file(ref_path("model.safetensors"));
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(good[i]);
    const std::string header = good.substr(8, n), data = good.substr(8 + n);
    auto with_header = [&](const std::string& h, const std::string& d) {
        std::string out(8, '\0');
        for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
        return out + h + d;
    };
    auto replace_once = [](std::string s, const std::string& from, const std::string& to) {
        size_t p = s.find(from);
        EXPECT_NE(p, std::string::npos) << from;
        return s.replace(p, from.size(), to);
    };
    struct Case { const char* name; std::string bytes; const char* needle; };
    std::string big_len = good;
    big_len[3] = static_cast<char>(0x01);  // header length += 16 MiB, past the end
    std::vector<Case> cases = {
        {"empty", "", "0 bytes"},
        {"truncated", good.substr(0, good.size() - 1000), "beyond data size"},
        {"header_len", big_len, "header length"},
        {"offsets", with_header(replace_once(header, "[1138688,1138944]", "[1138688,1200000]"), data), "beyond data size"},
        {"overlap", with_header(replace_once(header, "\"data_offsets\":[81920,163840]", "\"data_offsets\":[0,81920]"), data), "overlaps"},
        {"json", with_header(header.substr(0, header.size() / 2), data), "JSON"},
    };
    for (const auto& c : cases) {
        std::string dir = scratch_dir(std::string("w_corrupt_") + c.name);
        write_file(dir + "/model.safetensors", c.bytes);
        std::string msg = load_error(dir, ref_config());
        EXPECT_TRUE(contains(msg, dir + "/model.safetensors")) << c.name << ": " << msg;
        EXPECT_TRUE(contains(msg, c.needle)) << c.name << ": " << msg;
    }
}
