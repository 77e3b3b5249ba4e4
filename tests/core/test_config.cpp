// Config tests: the diffed config.json must give exactly the values HF spelled out in
// config_full.json; to_hf_json must reproduce HF's config.json; bad input names the key.
#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>

#include "core/common.h"
#include "core/io/config.h"
#include "core/io/json_util.h"
#include "test_util.h"

using dltest::read_file;
using dltest::reference_dir;
using dltest::scratch_dir;
using dltest::write_file;
using json = nlohmann::json;

namespace {

json load(const std::string& name) { return json::parse(read_file(reference_dir() + "/" + name)); }

void expect_error(const json& j, const std::vector<std::string>& needles) {
    try {
        dl::LlavaConfig::from_json(j, "config.json");
        FAIL() << "no error for " << j.dump();
    } catch (const dl::Error& e) {
        std::string msg = e.what();
        EXPECT_EQ(msg.rfind("config.json: ", 0), 0u) << msg;
        for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
    }
}

}  // namespace

TEST(Config, DiffedConfigGivesFullValues) {
    dl::LlavaConfig c = dl::LlavaConfig::from_file(reference_dir() + "/config.json");
    const json full = load("config_full.json");
    const json& fv = full["vision_config"];
    const json& ft = full["text_config"];
    EXPECT_EQ(c.vision.hidden_size, fv["hidden_size"].get<int>());
    EXPECT_EQ(c.vision.intermediate_size, fv["intermediate_size"].get<int>());
    EXPECT_EQ(c.vision.num_hidden_layers, fv["num_hidden_layers"].get<int>());
    EXPECT_EQ(c.vision.num_attention_heads, fv["num_attention_heads"].get<int>());
    EXPECT_EQ(c.vision.num_channels, fv["num_channels"].get<int>());
    EXPECT_EQ(c.vision.image_size, fv["image_size"].get<int>());
    EXPECT_EQ(c.vision.patch_size, fv["patch_size"].get<int>());
    EXPECT_EQ(c.vision.projection_dim, fv["projection_dim"].get<int>());
    EXPECT_EQ(c.vision.layer_norm_eps, fv["layer_norm_eps"].get<double>());
    EXPECT_EQ(c.vision.hidden_act, fv["hidden_act"].get<std::string>());

    EXPECT_EQ(c.text.vocab_size, ft["vocab_size"].get<int>());
    EXPECT_EQ(c.text.hidden_size, ft["hidden_size"].get<int>());
    EXPECT_EQ(c.text.intermediate_size, ft["intermediate_size"].get<int>());
    EXPECT_EQ(c.text.num_hidden_layers, ft["num_hidden_layers"].get<int>());
    EXPECT_EQ(c.text.num_attention_heads, ft["num_attention_heads"].get<int>());
    EXPECT_EQ(c.text.num_key_value_heads, ft["num_key_value_heads"].get<int>());
    EXPECT_EQ(c.text.max_position_embeddings, ft["max_position_embeddings"].get<int>());
    EXPECT_EQ(c.text.rms_norm_eps, ft["rms_norm_eps"].get<double>());
    EXPECT_EQ(c.text.rope_theta, ft["rope_theta"].get<double>());
    EXPECT_EQ(c.text.hidden_act, ft["hidden_act"].get<std::string>());
    EXPECT_EQ(c.text.attention_bias, ft["attention_bias"].get<bool>());
    EXPECT_EQ(c.text.tie_word_embeddings, ft["tie_word_embeddings"].get<bool>());
    EXPECT_EQ(c.text.bos_token_id, ft["bos_token_id"].get<int>());
    EXPECT_EQ(c.text.eos_token_id, ft["eos_token_id"].get<int>());
    EXPECT_TRUE(ft["pad_token_id"].is_null());
    EXPECT_EQ(c.text.pad_token_id, -1);
    EXPECT_TRUE(ft["rope_scaling"].is_null());
    EXPECT_EQ(c.text.head_dim(), 16);   // README: head_dim 16
    EXPECT_FALSE(c.text.mlp_bias);      // 4.40 Llama has no mlp_bias (always false)

    EXPECT_EQ(c.image_token_index, full["image_token_index"].get<int>());
    EXPECT_EQ(c.pad_token_id, full["pad_token_id"].get<int>());
    EXPECT_EQ(c.projector_hidden_act, full["projector_hidden_act"].get<std::string>());
    EXPECT_EQ(c.vision_feature_layers, std::vector<int>{full["vision_feature_layer"].get<int>()});
    EXPECT_EQ(c.vision_feature_select_strategy, full["vision_feature_select_strategy"].get<std::string>());
    EXPECT_EQ(c.torch_dtype, full["torch_dtype"].get<std::string>());
    EXPECT_EQ(c.name_or_path, full["_name_or_path"].get<std::string>());
    EXPECT_TRUE(c.multimodal_projector_bias);
    EXPECT_FALSE(c.random_weights);
    // README geometry: 4x4 = 16 patches, default strategy drops CLS.
    EXPECT_EQ(c.vision.grid(), 4);
    EXPECT_EQ(c.num_image_tokens(), 16);
}

TEST(Config, FullConfigParsesToSameValues) {
    dl::LlavaConfig a = dl::LlavaConfig::from_file(reference_dir() + "/config.json");
    dl::LlavaConfig b = dl::LlavaConfig::from_json(load("config_full.json"), "config_full.json");
    EXPECT_EQ(a.to_hf_json(), b.to_hf_json());
}

TEST(Config, EmptyConfigGivesLlava15Defaults) {
    dl::LlavaConfig c = dl::LlavaConfig::from_json(json::object(), "config.json");
    // shared/specs/llava-hf.md: CLIP-L/336 vision, LlamaConfig() text.
    EXPECT_EQ(c.vision.hidden_size, 1024);
    EXPECT_EQ(c.vision.intermediate_size, 4096);
    EXPECT_EQ(c.vision.num_hidden_layers, 24);
    EXPECT_EQ(c.vision.num_attention_heads, 16);
    EXPECT_EQ(c.vision.image_size, 336);
    EXPECT_EQ(c.vision.patch_size, 14);
    EXPECT_EQ(c.vision.hidden_act, "quick_gelu");
    EXPECT_EQ(c.vision.layer_norm_eps, 1e-5);
    EXPECT_EQ(c.text.hidden_size, 4096);
    EXPECT_EQ(c.text.num_hidden_layers, 32);
    EXPECT_EQ(c.text.num_attention_heads, 32);
    EXPECT_EQ(c.text.num_key_value_heads, 32);
    EXPECT_EQ(c.text.intermediate_size, 11008);
    EXPECT_EQ(c.text.rms_norm_eps, 1e-6);
    EXPECT_EQ(c.text.rope_theta, 10000.0);
    EXPECT_EQ(c.text.vocab_size, 32000);
    EXPECT_EQ(c.text.max_position_embeddings, 2048);
    EXPECT_EQ(c.image_token_index, 32000);
    EXPECT_EQ(c.vision_feature_layers, std::vector<int>{-2});
    EXPECT_EQ(c.num_image_tokens(), 576);
    // kv heads follow the heads when omitted.
    json j = {{"text_config", {{"num_attention_heads", 8}, {"hidden_size", 512}}}};
    EXPECT_EQ(dl::LlavaConfig::from_json(j, "config.json").text.num_key_value_heads, 8);
}

TEST(Config, NewerKeysAndAliases) {
    json j = load("config.json");
    j.erase("image_token_index");
    j["image_token_id"] = 317;
    j["vision_feature_layer"] = json::array({-2});
    j["image_seq_length"] = 16;
    j["multimodal_projector_bias"] = true;
    j["text_config"]["rope_scaling"] = nullptr;
    j["text_config"]["tie_word_embeddings"] = true;
    j["tie_word_embeddings"] = false;
    dl::LlavaConfig c = dl::LlavaConfig::from_json(j, "config.json");
    EXPECT_EQ(c.image_token_index, 317);
    EXPECT_EQ(c.vision_feature_layers, std::vector<int>{-2});
    EXPECT_EQ(c.image_seq_length, 16);
    EXPECT_TRUE(c.text.tie_word_embeddings);  // the text config decides
    j["text_config"].erase("tie_word_embeddings");
    j["tie_word_embeddings"] = true;
    EXPECT_TRUE(dl::LlavaConfig::from_json(j, "config.json").text.tie_word_embeddings);  // top-level fallback
    j["pad_token_id"] = nullptr;
    EXPECT_EQ(dl::LlavaConfig::from_json(j, "config.json").pad_token_id, -1);
    j["text_config"]["head_dim"] = 32;
    EXPECT_EQ(dl::LlavaConfig::from_json(j, "config.json").text.head_dim(), 32);
    j["vision_feature_select_strategy"] = "full";
    EXPECT_EQ(dl::LlavaConfig::from_json(j, "config.json").num_image_tokens(), 17);
}

TEST(Config, ToHfJsonReproducesSavePretrained) {
    const json original = load("config.json");
    dl::LlavaConfig c = dl::LlavaConfig::from_json(original, "config.json");
    EXPECT_EQ(c.to_hf_json(), original) << c.to_hf_json().dump(2);
    EXPECT_FALSE(c.to_hf_json().contains("dartlens_random_weights"));
}

TEST(Config, RoundTripOfNonDefaultValues) {
    json j = load("config.json");
    j["text_config"]["rope_theta"] = 500000.0;
    j["text_config"]["hidden_act"] = "silu";
    j["text_config"]["attention_bias"] = true;
    j["text_config"]["tie_word_embeddings"] = true;
    j["text_config"]["num_key_value_heads"] = 4;
    j["vision_config"]["layer_norm_eps"] = 1e-6;
    j["vision_config"]["hidden_act"] = "gelu";
    j["vision_feature_layer"] = -1;
    j["vision_feature_select_strategy"] = "full";
    j["dartlens_random_weights"] = true;
    j["torch_dtype"] = "float16";
    dl::LlavaConfig a = dl::LlavaConfig::from_json(j, "config.json");
    json written = a.to_hf_json();
    EXPECT_EQ(written["dartlens_random_weights"], true);
    EXPECT_FALSE(written.contains("tie_word_embeddings"));  // true is PretrainedConfig's default
    EXPECT_EQ(written["text_config"]["tie_word_embeddings"], true);
    std::string path = scratch_dir("config_rt") + "/config.json";
    write_file(path, written.dump(2));
    dl::LlavaConfig b = dl::LlavaConfig::from_file(path);
    EXPECT_EQ(b.text.rope_theta, 500000.0);
    EXPECT_TRUE(b.text.attention_bias);
    EXPECT_TRUE(b.text.tie_word_embeddings);
    EXPECT_EQ(b.text.num_key_value_heads, 4);
    EXPECT_EQ(b.vision.layer_norm_eps, 1e-6);
    EXPECT_EQ(b.vision.hidden_act, "gelu");
    EXPECT_EQ(b.vision_feature_layers, std::vector<int>{-1});
    EXPECT_EQ(b.vision_feature_select_strategy, "full");
    EXPECT_TRUE(b.random_weights);
    EXPECT_EQ(b.torch_dtype, "float16");
    EXPECT_EQ(b.to_hf_json(), written);
    // The CLIP-L/Llama-7B defaults round-trip through an (almost) empty file.
    dl::LlavaConfig d = dl::LlavaConfig::from_json(json::object(), "config.json");
    dl::LlavaConfig e = dl::LlavaConfig::from_json(d.to_hf_json(), "config.json");
    EXPECT_EQ(e.text.hidden_size, 4096);
    EXPECT_EQ(e.vision.hidden_size, 1024);
    EXPECT_EQ(d.to_hf_json(), e.to_hf_json());
}

TEST(Config, BadInputNamesTheKey) {
    const json base = load("config.json");
    auto with = [&](const std::function<void(json&)>& edit) {
        json j = base;
        edit(j);
        return j;
    };
    expect_error(with([](json& j) { j["text_config"]["hidden_size"] = "64"; }),
                 {"text_config.hidden_size: expected integer, got string"});
    expect_error(with([](json& j) { j["vision_config"]["patch_size"] = 14.5; }),
                 {"vision_config.patch_size", "expected integer"});
    expect_error(with([](json& j) { j["text_config"]["rms_norm_eps"] = "1e-5"; }),
                 {"text_config.rms_norm_eps", "expected number"});
    expect_error(with([](json& j) { j["text_config"]["attention_bias"] = 0; }),
                 {"text_config.attention_bias", "expected boolean"});
    expect_error(with([](json& j) { j["text_config"] = 5; }), {"text_config", "expected object"});
    expect_error(with([](json& j) { j["projector_hidden_act"] = 3; }), {"projector_hidden_act", "string"});
    expect_error(with([](json& j) { j["text_config"]["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}}; }),
                 {"text_config.rope_scaling", "not supported"});
    expect_error(with([](json& j) { j["text_config"]["num_key_value_heads"] = 3; }),
                 {"text_config.num_key_value_heads", "divisible"});
    expect_error(with([](json& j) { j["text_config"]["hidden_size"] = 66; }),
                 {"text_config.hidden_size", "divisible"});
    expect_error(with([](json& j) { j["vision_config"]["image_size"] = 60; }),
                 {"vision_config.image_size", "patch_size"});
    expect_error(with([](json& j) { j["vision_config"]["hidden_size"] = 66; }),
                 {"vision_config.hidden_size", "divisible"});
    expect_error(with([](json& j) { j["vision_feature_layer"] = -4; }), {"vision_feature_layer", "out of range"});
    expect_error(with([](json& j) { j["vision_feature_layer"] = 3; }), {"vision_feature_layer", "out of range"});
    expect_error(with([](json& j) { j["vision_feature_layer"] = json::array({-2, -1}); }),
                 {"vision_feature_layer", "not supported"});
    expect_error(with([](json& j) { j["vision_feature_layer"] = "last"; }), {"vision_feature_layer"});
    expect_error(with([](json& j) { j["vision_feature_select_strategy"] = "cls"; }),
                 {"vision_feature_select_strategy"});
    expect_error(with([](json& j) { j["text_config"]["num_hidden_layers"] = 0; }),
                 {"text_config.num_hidden_layers", "positive"});
    expect_error(with([](json& j) { j["text_config"]["vocab_size"] = -5; }), {"text_config.vocab_size"});
    expect_error(with([](json& j) { j["text_config"]["vocab_size"] = 5000000000LL; }),
                 {"text_config.vocab_size", "range"});
    expect_error(with([](json& j) { j["model_type"] = "qwen2_vl"; }), {"model_type"});
    expect_error(with([](json& j) { j["text_config"]["model_type"] = "gemma"; }), {"text_config.model_type"});
    expect_error(with([](json& j) { j["image_token_id"] = 5; }), {"image_token_id", "disagrees"});
    expect_error(json::array({1, 2}), {"not a JSON object"});

    std::string dir = scratch_dir("config_bad");
    write_file(dir + "/config.json", "{\"text_config\": {");
    try {
        dl::LlavaConfig::from_file(dir + "/config.json");
        FAIL();
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find(dir + "/config.json"), std::string::npos);
    }
    EXPECT_THROW(dl::LlavaConfig::from_file(dir + "/missing.json"), dl::Error);
}

// Every element of an integer list is range-checked like a single value and named by its index:
// unchecked narrowing read 4294967294 (2^32 - 2) as -2, a valid layer.
TEST(Config, ListElementsAreRangeChecked) {
    const json base = load("config.json");
    auto with_layer = [&](const json& layer) {
        json j = base;
        j["vision_feature_layer"] = layer;
        return j;
    };
    expect_error(with_layer(json::array({4294967294LL})), {"config.json: vision_feature_layer[0]: 4294967294", "range"});
    expect_error(with_layer(json::array({-5000000000LL})), {"vision_feature_layer[0]", "range"});
    expect_error(with_layer(json::array({"-2"})), {"vision_feature_layer[0]: expected integer, got string"});
    expect_error(with_layer(json::array({-2.0})), {"vision_feature_layer[0]: expected integer"});
    expect_error(with_layer(json::array()), {"vision_feature_layer", "empty"});
    // In int range but not a layer of this tower (2 CLIP layers: -3..2): the index is named too.
    expect_error(with_layer(json::array({7})), {"vision_feature_layer[0]: 7 is out of range for 2 CLIP layers"});
    expect_error(with_layer(7), {"vision_feature_layer: 7 is out of range"});
    expect_error(with_layer(4294967294LL), {"vision_feature_layer: 4294967294", "range"});
    EXPECT_EQ(dl::LlavaConfig::from_json(with_layer(json::array({-3})), "config.json").vision_feature_layers,
              std::vector<int>{-3});

    std::string dir = scratch_dir("gen_cfg_list");
    write_file(dir + "/g.json", R"({"eos_token_id": [2, 4294967298]})");  // 2^32 + 2 narrowed to 2
    try {
        dl::GenerationConfig::from_file(dir + "/g.json");
        FAIL() << "no error for eos_token_id [2, 4294967298]";
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find(dir + "/g.json: eos_token_id[1]: 4294967298 is out of range"),
                  std::string::npos) << e.what();
    }
    json j = base;
    j["text_config"]["eos_token_id"] = json::array({2, "3"});
    expect_error(j, {"text_config.eos_token_id[1]: expected integer, got string"});
}

// tests/data/fuzz/fuzz_config/regress-*.json: limits where int arithmetic used to overflow.
TEST(Config, GeometryAndLayerLimits) {
    constexpr int kIntMax = std::numeric_limits<int>::max();
    // image_size / patch_size = 46341 gives 46341^2 > INT_MAX patches: num_image_tokens() cannot be
    // an int (regress-patch-grid-overflow.json has 2147483646 / 1).
    expect_error({{"vision_config", {{"image_size", 2147483646}, {"patch_size", 1}}}},
                 {"vision_config.image_size", "2147483646^2 patches, too many"});
    expect_error({{"vision_config", {{"image_size", 46341}, {"patch_size", 1}}}},
                 {"vision_config.image_size", "46341^2 patches, too many"});
    // 46340^2 = 2147395600 (+ 1 for CLS under "full") still fits.
    json largest = {{"vision_config", {{"image_size", 46340}, {"patch_size", 1}}},
                    {"vision_feature_select_strategy", "full"}};
    EXPECT_EQ(dl::LlavaConfig::from_json(largest, "config.json").num_image_tokens(), 46340 * 46340 + 1);
    // INT_MAX CLIP layers (regress-clip-layers-int-max.json): the valid range -(INT_MAX + 1)..INT_MAX
    // is computed in 64 bits (in int, -(INT_MAX + 1) overflowed: UBSan stops here in sanitizer builds).
    json many = {{"vision_config", {{"num_hidden_layers", kIntMax}}}};
    dl::LlavaConfig c = dl::LlavaConfig::from_json(many, "config.json");
    EXPECT_EQ(c.vision.num_hidden_layers, kIntMax);
    EXPECT_EQ(c.vision_feature_layers, std::vector<int>{-2});
    many["vision_feature_layer"] = std::numeric_limits<int>::min();
    EXPECT_EQ(dl::LlavaConfig::from_json(many, "config.json").vision_feature_layers[0], std::numeric_limits<int>::min());
    // With the default 24 layers, INT_MIN is refused and the message gives the range.
    expect_error({{"vision_feature_layer", std::numeric_limits<int>::min()}},
                 {"vision_feature_layer: -2147483648 is out of range for 24 CLIP layers (valid: -25..24)"});
}

// json_util.h: integers are parsed whole and range-checked, never narrowed.
TEST(JsonUtil, ParseIntIsStrict) {
    const int64_t kMin = std::numeric_limits<int64_t>::min(), kMax = std::numeric_limits<int64_t>::max();
    auto value = [&](const std::string& text, int64_t lo, int64_t hi) {
        int64_t out = 12345;
        std::string why = dl::parse_int(text, lo, hi, &out);
        EXPECT_EQ(why, "") << "'" << text << "'";
        return out;
    };
    auto why = [&](const std::string& text, int64_t lo, int64_t hi) {
        int64_t out = 12345;
        std::string w = dl::parse_int(text, lo, hi, &out);
        EXPECT_EQ(out, 12345) << "'" << text << "': *out written on failure";
        return w;
    };
    EXPECT_EQ(value("0", 0, 10), 0);
    EXPECT_EQ(value("32000", 0, kMax), 32000);
    EXPECT_EQ(value("0032", 0, kMax), 32);
    EXPECT_EQ(value("-7", -10, 10), -7);
    EXPECT_EQ(value("2147483647", 0, 2147483647), 2147483647);
    EXPECT_EQ(value("9223372036854775807", kMin, kMax), kMax);
    EXPECT_EQ(value("-9223372036854775808", kMin, kMax), kMin);
    for (const char* bad : {"", "-", " 7", "7 ", "+7", "32000abc", "1e3", "0x10", "3.0", "--1", "7\n"})
        EXPECT_EQ(why(bad, kMin, kMax), "not a decimal integer") << "'" << bad << "'";
    EXPECT_EQ(why("2147483648", 0, 2147483647), "out of range [0, 2147483647]");
    EXPECT_EQ(why("-1", 0, 10), "out of range [0, 10]");
    EXPECT_EQ(why("9223372036854775808", kMin, kMax), dl::str_cat("out of range [", kMin, ", ", kMax, "]"));
    EXPECT_EQ(why("-9223372036854775809", kMin, kMax), dl::str_cat("out of range [", kMin, ", ", kMax, "]"));
    EXPECT_EQ(why("18446744073709551616", kMin, kMax), dl::str_cat("out of range [", kMin, ", ", kMax, "]"));
    EXPECT_EQ(why(std::string(40, '9'), 0, 10), "out of range [0, 10]");
    EXPECT_EQ(why(std::string(40, '9') + "x", 0, 10), "not a decimal integer");

    int64_t out = 0;
    EXPECT_EQ(dl::json_int(json(5), 0, 10, &out), "");
    EXPECT_EQ(out, 5);
    EXPECT_EQ(dl::json_int(json(-5), -10, 10, &out), "");
    EXPECT_EQ(out, -5);
    EXPECT_EQ(dl::json_int(json(1.0), 0, 10, &out), "expected integer, got number");
    EXPECT_EQ(dl::json_int(json("3"), 0, 10, &out), "expected integer, got string");
    EXPECT_EQ(dl::json_int(json(true), 0, 10, &out), "expected integer, got boolean");
    EXPECT_EQ(dl::json_int(json(11), 0, 10, &out), "11 is out of range [0, 10]");
    EXPECT_EQ(dl::json_int(json(-1), 0, 10, &out), "-1 is out of range [0, 10]");
    EXPECT_EQ(dl::json_int(json(std::numeric_limits<uint64_t>::max()), 0, kMax, &out),
              dl::str_cat("18446744073709551615 is out of range [0, ", kMax, "]"));
    EXPECT_EQ(dl::json_int(json(uint64_t(3)), 5, 10, &out), "3 is out of range [5, 10]");
    EXPECT_EQ(out, -5);  // unchanged by the failures
}

TEST(JsonUtil, ReadJsonFileNamesTheFile) {
    std::string dir = scratch_dir("json_util");
    write_file(dir + "/ok.json", R"({"a": [1, 2]})");
    EXPECT_EQ(dl::read_json_file(dir + "/ok.json"), json({{"a", {1, 2}}}));
    write_file(dir + "/bad.json", "{\"a\": ");
    for (const std::string& name : {std::string("bad.json"), std::string("missing.json")}) {
        try {
            dl::read_json_file(dir + "/" + name);
            ADD_FAILURE() << name;
        } catch (const dl::Error& e) {
            EXPECT_EQ(std::string(e.what()).rfind(dir + "/" + name + ": ", 0), 0u) << e.what();
            EXPECT_NE(std::string(e.what()).find(name == "bad.json" ? "not valid JSON" : "cannot open"),
                      std::string::npos) << e.what();
        }
    }
}

TEST(Preprocessor, Llava15HfFileAndVariants) {
    // The preprocessor_config.json llava-hf/llava-1.5-*-hf ship (CLIPImageProcessor).
    json hf = json::parse(R"({
      "crop_size": {"height": 336, "width": 336}, "do_center_crop": true, "do_convert_rgb": true,
      "do_normalize": true, "do_rescale": true, "do_resize": true,
      "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "CLIPImageProcessor",
      "image_std": [0.26862954, 0.26130258, 0.27577711], "processor_class": "LlavaProcessor",
      "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 336}})");
    dl::PreprocessorConfig p = dl::PreprocessorConfig::from_json(hf, "preprocessor_config.json");
    EXPECT_EQ(p.shortest_edge, 336);
    EXPECT_EQ(p.crop_height, 336);
    EXPECT_EQ(p.crop_width, 336);
    EXPECT_EQ(p.image_mean[1], 0.4578275);
    EXPECT_EQ(p.image_std[2], 0.27577711);
    EXPECT_EQ(p.rescale_factor, 0.00392156862745098);
    EXPECT_EQ(p.mode, "crop");
    EXPECT_EQ(p.to_json(), hf);

    json old = {{"size", 224}, {"crop_size", 224}, {"image_aspect_ratio", "pad"}};
    dl::PreprocessorConfig q = dl::PreprocessorConfig::from_json(old, "pp.json");
    EXPECT_EQ(q.shortest_edge, 224);
    EXPECT_EQ(q.crop_width, 224);
    EXPECT_EQ(q.mode, "pad");
    dl::PreprocessorConfig r = dl::PreprocessorConfig::from_json(q.to_json(), "pp.json");
    EXPECT_EQ(r.mode, "pad");
    EXPECT_EQ(r.shortest_edge, 224);
    EXPECT_EQ(dl::PreprocessorConfig::from_json({{"dartlens_preprocess", "pad"}}, "pp.json").mode, "pad");

    auto bad = [](const json& j, const std::string& needle) {
        try {
            dl::PreprocessorConfig::from_json(j, "pp.json");
            FAIL() << j.dump();
        } catch (const dl::Error& e) {
            EXPECT_NE(std::string(e.what()).find("pp.json: "), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    bad({{"image_mean", {0.5, 0.5}}}, "image_mean");
    bad({{"image_std", {0.5, "x", 0.5}}}, "image_std[1]");
    bad({{"image_std", {0.5, 0.0, 0.5}}}, "image_std");
    bad({{"size", "336"}}, "size");
    bad({{"size", {{"height", 336}, {"width", 224}}}}, "size");
    bad({{"crop_size", {{"height", "a"}}}}, "crop_size.height");
    bad({{"do_resize", "yes"}}, "do_resize");
    bad({{"dartlens_preprocess", "stretch"}}, "dartlens_preprocess");
    bad({{"image_aspect_ratio", "anyres"}}, "image_aspect_ratio");
}

TEST(Generation, ReferenceAndListEos) {
    dl::GenerationConfig g = dl::GenerationConfig::from_file(reference_dir() + "/generation_config.json");
    EXPECT_EQ(g.bos_token_id, 1);
    EXPECT_EQ(g.eos_token_id, 2);
    EXPECT_EQ(g.pad_token_id, 318);
    EXPECT_EQ(g.eos_token_ids, std::vector<int>{2});
    std::string dir = scratch_dir("gen_cfg");
    write_file(dir + "/g.json", R"({"eos_token_id": [2, 32007], "bos_token_id": 1})");
    g = dl::GenerationConfig::from_file(dir + "/g.json");
    EXPECT_EQ(g.eos_token_ids, (std::vector<int>{2, 32007}));
    EXPECT_EQ(g.eos_token_id, 2);
    EXPECT_EQ(g.pad_token_id, -1);
    g = dl::GenerationConfig::from_file(dir + "/absent.json");  // optional file: defaults
    EXPECT_EQ(g.eos_token_id, 2);
    write_file(dir + "/bad.json", R"({"eos_token_id": "2"})");
    try {
        dl::GenerationConfig::from_file(dir + "/bad.json");
        FAIL();
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find("eos_token_id"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
    }
}
