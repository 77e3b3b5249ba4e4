// CLIP vision tower + LLaVA projector (see vision.h for what is computed and why).
#include "core/model/vision.h"

#include <cmath>

#include "core/io/image_next.h"

#include "core/model/attention.h"
#include "core/common.h"
#include "core/progress.h"

namespace dl {

int clip_feature_hidden_index(const LlavaConfig& config) {
    const int L = config.vision.num_hidden_layers;
    if (config.vision_feature_layers.empty()) throw Error("config: vision_feature_layer is empty");
    const int f = config.vision_feature_layers[0];
    const int idx = f < 0 ? L + 1 + f : f;
    if (idx < 0 || idx > L)
        throw Error(str_cat("config: vision_feature_layer ", f, " outside the ", L + 1, " hidden states"));
    return idx;
}

static at::Tensor layer_norm_f32(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps) {
    at::Tensor y = at::layer_norm(x.to(at::kFloat), {x.size(-1)}, w.to(at::kFloat), b.to(at::kFloat), eps);
    return y.to(x.scalar_type());
}

static at::Tensor activation(const std::string& name, const at::Tensor& x) {
    if (name == "quick_gelu") return x * at::sigmoid(x * 1.702);
    if (name == "gelu") return at::gelu(x);  // exact (erf) form
    if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return at::gelu(x, "tanh");
    if (name == "relu") return at::relu(x);
    if (name == "silu" || name == "swish") return at::silu(x);
    throw Error(str_cat("config: unsupported activation '", name, "'"));
}

at::Tensor clip_embeddings(const ClipWeights& weights, const VisionConfig& config,
                           const at::Tensor& pixel_values) {
    const int64_t P = config.patch_size, G = config.grid(), C = config.num_channels;
    if (pixel_values.dim() != 4 || pixel_values.size(0) != 1 || pixel_values.size(1) != C ||
        pixel_values.size(2) != config.image_size || pixel_values.size(3) != config.image_size)
        throw Error(str_cat("encode_image: pixel_values must be [1,", C, ",", config.image_size, ",",
                            config.image_size, "], got ", pixel_values.sizes()));
    const at::Tensor& pw = weights.patch_embedding;  // [hidden, C, P, P]
    at::Tensor pix = pixel_values.to(pw.device()).to(pw.scalar_type());
    // conv(kernel = stride = P) == matmul over the flattened (c, ky, kx) patch, patches row-major
    at::Tensor patches = pix[0].reshape({C, G, P, G, P}).permute({1, 3, 0, 2, 4}).reshape({G * G, C * P * P});
    at::Tensor x = at::linear(patches, pw.reshape({pw.size(0), -1}));            // [G*G, hidden]
    x = at::cat({weights.class_embedding.to(x.scalar_type()).unsqueeze(0), x}, 0);  // [1+G*G, hidden]
    x = x + weights.position_embedding;
    return layer_norm_f32(x, weights.pre_ln_w, weights.pre_ln_b, config.layer_norm_eps);
}

at::Tensor clip_layer(const ClipLayerWeights& L, const VisionConfig& config, const at::Tensor& x) {
    const int64_t T = x.size(0), Hh = config.num_attention_heads, D = config.head_dim();
    at::Tensor h = layer_norm_f32(x, L.ln1_w, L.ln1_b, config.layer_norm_eps);
    at::Tensor q = linear_layer(h, L.q_w, L.q_b).view({T, Hh, D}).transpose(0, 1);  // [Hh,T,D]
    at::Tensor k = linear_layer(h, L.k_w, L.k_b).view({T, Hh, D}).transpose(0, 1);
    at::Tensor v = linear_layer(h, L.v_w, L.v_b).view({T, Hh, D}).transpose(0, 1);
    at::Tensor a = attention(q, k, v, false).transpose(0, 1).reshape({T, Hh * D});
    at::Tensor out = x + linear_layer(a, L.o_w, L.o_b);
    h = layer_norm_f32(out, L.ln2_w, L.ln2_b, config.layer_norm_eps);
    at::Tensor m = activation(config.hidden_act, linear_layer(h, L.fc1_w, L.fc1_b));
    out = out + linear_layer(m, L.fc2_w, L.fc2_b);
    return out;
}

at::Tensor project_features(const ProjectorWeights& weights, const std::string& act,
                            const at::Tensor& features) {
    at::Tensor h = activation(act, linear_layer(features, weights.l1_w, weights.l1_b));
    return linear_layer(h, weights.l2_w, weights.l2_b);
}

static VisionTrace run_vision(const LlavaWeights& weights, const LlavaConfig& config,
                              const at::Tensor& pixel_values, bool keep) {
    const int idx = clip_feature_hidden_index(config);
    if (int(weights.vision.layers.size()) < idx)
        throw Error(str_cat("encode_image: feature layer needs ", idx, " CLIP layers, weights hold ",
                            weights.vision.layers.size()));
    VisionTrace t;
    at::Tensor x = clip_embeddings(weights.vision, config.vision, pixel_values);  // [T,C]
    if (keep) t.hidden_states.push_back(x);
    // ViT-L/14-336 runs 23 layers on 577 tokens: report each and stop at a cancel between them.
    progress_step(0, idx, "vision");
    for (int l = 0; l < idx; ++l) {
        x = clip_layer(weights.vision.layers[l], config.vision, x);
        if (keep) t.hidden_states.push_back(x);
        progress_step(l + 1, idx, "vision");
    }
    const std::string& strategy = config.vision_feature_select_strategy;
    if (strategy == "default") t.selected = x.narrow(0, 1, x.size(0) - 1);
    else if (strategy == "full") t.selected = x;
    else throw Error(str_cat("config: unsupported vision_feature_select_strategy '", strategy, "'"));
    t.image_features = project_features(weights.projector, config.projector_hidden_act, t.selected);
    return t;
}

at::Tensor encode_image(const LlavaWeights& weights, const LlavaConfig& config,
                        const at::Tensor& pixel_values) {
    return run_vision(weights, config, pixel_values, false).image_features;
}

at::Tensor encode_image_next(const LlavaWeights& weights, const LlavaConfig& config, const at::Tensor& pixel_values,
                             int height, int width) {
    if (!config.is_next()) throw Error("encode_image_next: the model is not LLaVA-NeXT");
    if (!weights.image_newline.defined()) throw Error("encode_image_next: the weights have no image_newline");
    const NextLayout L = next_layout(height, width, config.image_grid_pinpoints, config.vision.image_size,
                                     config.vision.patch_size);
    if (pixel_values.dim() != 4 || pixel_values.size(0) != 1 + L.num_tiles())
        throw Error(str_cat("encode_image_next: pixel_values ", pixel_values.sizes(), " for a ", width, "x", height,
                            " picture: expected [", 1 + L.num_tiles(), ",3,S,S] (base + ", L.tile_rows, "x",
                            L.tile_cols, " tiles)"));
    // Each tile (and the base image) through the tower and the projector: [1 + tiles, g*g, d].
    // Progress: the caller's bar is shared by the passes, each reporting its CLIP layers.
    std::vector<at::Tensor> feats;
    const int n = int(pixel_values.size(0));
    for (int i = 0; i < n; ++i) {
        ProgressScope part(double(i) / n, double(i + 1) / n);
        feats.push_back(run_vision(weights, config, pixel_values.narrow(0, i, 1), false).image_features);
    }
    const int64_t g = L.grid, d = feats[0].size(1);
    if (feats[0].size(0) != g * g)
        throw Error(str_cat("encode_image_next: ", feats[0].size(0), " features per tile, expected ", g * g));
    // pack_image_features: the tiles' features as one (tile_rows*g) x (tile_cols*g) map, unpadded,
    // an image_newline after each row, the base image's features first.
    at::Tensor tiles = at::stack(std::vector<at::Tensor>(feats.begin() + 1, feats.end()));      // [tr*tc, g*g, d]
    at::Tensor map = tiles.view({L.tile_rows, L.tile_cols, g, g, d}).permute({0, 2, 1, 3, 4})
                         .reshape({L.feature_rows, L.feature_cols, d});
    map = map.slice(0, L.row0, L.row1).slice(1, L.col0, L.col1);                                 // [h, w, d]
    at::Tensor nl = weights.image_newline.to(map.scalar_type()).view({1, 1, d}).expand({map.size(0), 1, d});
    at::Tensor rows = at::cat({map, nl}, 1).reshape({-1, d});                                    // [h*(w+1), d]
    return at::cat({feats[0], rows}, 0);
}

VisionTrace encode_image_trace(const LlavaWeights& weights, const LlavaConfig& config,
                               const at::Tensor& pixel_values) {
    return run_vision(weights, config, pixel_values, true);
}

}  // namespace dl
