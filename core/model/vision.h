// The CLIP vision tower and the multimodal projector of LLaVA, as Hugging Face computes them.
//
// CLIP (transformers 4.40 CLIPVisionModel): patch embedding = conv kernel=stride=P without bias
// (done here as a matmul over flattened (c,ky,kx) patches, row-major patch order), prepend the
// class embedding, add position embeddings, pre_layrnorm; then pre-LN layers
// x += out_proj(attn(LN1(x))) (biases, scale D^-0.5, no mask), x += fc2(quick_gelu(fc1(LN2(x)))).
// hidden_states[0] is the embedding output, hidden_states[i+1] the output of layer i. LLaVA takes
// hidden_states[vision_feature_layer] (default -2: the second-to-last layer's output, so the last
// layer is never run), does NOT apply post_layernorm, and drops CLS for strategy "default".
// Projector: linear_2(gelu_erf(linear_1(x))). Layer norms run in float32.
#pragma once

#include <ATen/ATen.h>
#include <vector>

#include "core/io/config.h"
#include "core/io/weights.h"

namespace dl {

// Index into hidden_states (0 = embeddings) that the feature layer selects, e.g. -2 of 24 -> 23.
int clip_feature_hidden_index(const LlavaConfig& config);

// Embeddings: pixel_values [1,3,H,W] (any float dtype/device) -> [1+G*G, C] in the weights' dtype.
at::Tensor clip_embeddings(const ClipWeights& weights, const VisionConfig& config,
                           const at::Tensor& pixel_values);
// One CLIP encoder layer: x [T,C] -> [T,C].
at::Tensor clip_layer(const ClipLayerWeights& layer, const VisionConfig& config, const at::Tensor& x);
// Projector: features [N,C] -> [N,d_text].
at::Tensor project_features(const ProjectorWeights& weights, const std::string& act,
                            const at::Tensor& features);

struct VisionTrace {
    std::vector<at::Tensor> hidden_states;  // [T,C] each: embeddings, then each layer run
    at::Tensor selected;                    // [N,C] after feature-layer selection and CLS drop
    at::Tensor image_features;              // [N,d_text] projector output
};

// pixel_values [1,3,H,W] float32 (already normalised) -> image features [N, d_text] in the
// compute dtype of the weights. Throws dl::Error when the image size does not match the config.
at::Tensor encode_image(const LlavaWeights& weights, const LlavaConfig& config,
                        const at::Tensor& pixel_values);
// LLaVA-NeXT: pixel_values [1 + tiles, 3, S, S] of a height x width picture (preprocess_image_next)
// -> the packed image span [N, d_text] (base features, then the unpadded tile rows each ended by
// image_newline; see core/io/image_next.h).
at::Tensor encode_image_next(const LlavaWeights& weights, const LlavaConfig& config, const at::Tensor& pixel_values,
                             int height, int width);
// Same, keeping every intermediate (for tests and inspection).
VisionTrace encode_image_trace(const LlavaWeights& weights, const LlavaConfig& config,
                               const at::Tensor& pixel_values);

}  // namespace dl
