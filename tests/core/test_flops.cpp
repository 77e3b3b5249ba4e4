// Analytic FLOP counts against sums worked out by hand for a small config, plus the bench's list
// parser (llama-bench syntax).
#include <gtest/gtest.h>

#include "core/analysis/bench.h"
#include "core/common.h"
#include "core/io/config.h"
#include "core/analysis/flops.h"

namespace {

dl::LlavaConfig small_config() {
    dl::LlavaConfig c;
    c.text.hidden_size = 4;
    c.text.intermediate_size = 8;
    c.text.num_attention_heads = 2;
    c.text.num_key_value_heads = 1;
    c.text.num_hidden_layers = 2;
    c.text.vocab_size = 10;
    return c;
}

TEST(Flops, PrefillByHand) {
    const dl::LlavaConfig c = small_config();
    // One layer, S = 3, d = 4, H*D = 4, Hkv*D = 2, I = 8:
    //   q 2*3*4*4 = 96, k + v 2*(2*3*4*2) = 96, o 96, gate+up+down 3*(2*3*4*8) = 576,
    //   attention 2*2*H*D*(3*4/2) = 4*4*6 = 96  -> 960 per layer; lm_head 2*4*10 = 80.
    EXPECT_DOUBLE_EQ(dl::decoder_layer_flops(c.text, 3, 0), 960.0);
    EXPECT_DOUBLE_EQ(dl::prefill_flops(c, 3, 2, 3), 2 * 960.0 + 80.0);
    // Pruned at K = 1 to 2 tokens: layer 1 on S = 2: linears 2/3 of 864 = 576, attention 4*4*3 = 48.
    EXPECT_DOUBLE_EQ(dl::decoder_layer_flops(c.text, 2, 0), 624.0);
    EXPECT_DOUBLE_EQ(dl::prefill_flops(c, 3, 1, 2), 960.0 + 624.0 + 80.0);
}

TEST(Flops, DecodeByHand) {
    const dl::LlavaConfig c = small_config();
    // One token attending to past 5 (+ itself = 6): linears 864/3 = 288, attention 4*4*6 = 96.
    EXPECT_DOUBLE_EQ(dl::decoder_layer_flops(c.text, 1, 5), 384.0);
    // K = 1: layer 0 sees 5 cached entries, layer 1 sees 2.
    EXPECT_DOUBLE_EQ(dl::decode_flops_per_token(c, 1, 5, 2), 384.0 + (288.0 + 4 * 4 * 3) + 80.0);
}

TEST(Flops, KvBytes) {
    const dl::LlavaConfig c = small_config();
    // 2 (K and V) * len * Hkv * D * bytes: (3 + 2) entries * 2 * 1 * 2 * 4 bytes.
    EXPECT_EQ(dl::kv_cache_bytes(c.text, {3, 2}, 4), 80);
}

TEST(Flops, DecodeWeightBytesByHand) {
    dl::LlavaConfig c = small_config();
    // Per layer: q 4x4 + k, v 2x4 each + o 4x4 + gate, up, down 3 x 4x8 + 2 norms of 4 = 152;
    // 2 layers 304, final norm 4, lm_head 10x4 = 40, one embedding row 4: 352 elements.
    EXPECT_EQ(dl::decode_weight_bytes(c.text, 2), 704);
    c.text.attention_bias = true;  // + q 4, k 2, v 2, o 4 per layer
    EXPECT_EQ(dl::decode_weight_bytes(c.text, 4), (352 + 2 * 12) * 4);
}

TEST(Flops, VisionCountsOnlyLayersUpToTheFeatureLayer) {
    dl::LlavaConfig c = small_config();
    const double all_but_last = dl::vision_flops(c);
    c.vision.num_hidden_layers += 1;
    EXPECT_GT(dl::vision_flops(c), all_but_last);
}

TEST(BenchLists, ParsesListsAndRanges) {
    EXPECT_EQ(dl::parse_int_list("64,128,192", "--keep"), (std::vector<int>{64, 128, 192}));
    EXPECT_EQ(dl::parse_int_list("64-192+64", "--keep"), (std::vector<int>{64, 128, 192}));
    EXPECT_EQ(dl::parse_int_list("1-3,8", "--layer"), (std::vector<int>{1, 2, 3, 8}));
    EXPECT_EQ(dl::parse_double_list("0.5,0.889", "--ratio"), (std::vector<double>{0.5, 0.889}));
    for (const char* bad : {"x", "5-1", "1-4+0", "3a"}) {
        try {
            dl::parse_int_list(bad, "--keep");
            ADD_FAILURE() << bad;
        } catch (const dl::Error& e) {
            EXPECT_NE(std::string(e.what()).find("--keep"), std::string::npos);
        }
    }
}

}  // namespace
