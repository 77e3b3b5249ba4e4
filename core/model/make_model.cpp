// make-model: random-weight LLaVA checkpoints in the llava-hf layout (see make_model.h).
#include "core/model/make_model.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <utility>

#include "core/common.h"
#include "core/io/config.h"
#include "core/io/safetensors.h"

namespace fs = std::filesystem;

namespace dl {

namespace {

std::vector<MakeModelPreset> all_presets() {
    std::vector<MakeModelPreset> out;
    MakeModelPreset tiny;
    tiny.name = "tiny";
    tiny.description = "the test reference's geometry: image 56/14 -> 16 tokens, text 64x3 (GQA 4/2), vocab 512";
    tiny.image_size = 56, tiny.patch_size = 14;
    tiny.vision_hidden = 64, tiny.vision_intermediate = 128, tiny.vision_layers = 2, tiny.vision_heads = 4;
    tiny.projection_dim = 32;
    tiny.text_vocab = 512, tiny.text_hidden = 64, tiny.text_intermediate = 160, tiny.text_layers = 3;
    tiny.text_heads = 4, tiny.text_kv_heads = 2, tiny.max_positions = 512, tiny.dtype = "F32";
    out.push_back(tiny);

    MakeModelPreset small;
    small.name = "llava-geom-small";
    small.description = "benchmark preset: LLaVA-1.5 geometry (336/14 -> 576 tokens), text 512x8, vocab 4096";
    small.image_size = 336, small.patch_size = 14;
    small.vision_hidden = 256, small.vision_intermediate = 1024, small.vision_layers = 4, small.vision_heads = 4;
    small.projection_dim = 256;
    small.text_vocab = 4096, small.text_hidden = 512, small.text_intermediate = 1408, small.text_layers = 8;
    small.text_heads = 8, small.text_kv_heads = 4, small.max_positions = 4096, small.dtype = "F16";
    out.push_back(small);

    MakeModelPreset medium;
    medium.name = "llava-geom-medium";
    medium.description = "LLaVA-1.5 geometry (576 tokens), text 1024x12 (GQA 16/8), vision 384x6, vocab 8192";
    medium.image_size = 336, medium.patch_size = 14;
    medium.vision_hidden = 384, medium.vision_intermediate = 1536, medium.vision_layers = 6, medium.vision_heads = 6;
    medium.projection_dim = 384;
    medium.text_vocab = 8192, medium.text_hidden = 1024, medium.text_intermediate = 2816, medium.text_layers = 12;
    medium.text_heads = 16, medium.text_kv_heads = 8, medium.max_positions = 4096, medium.dtype = "F16";
    out.push_back(medium);

    // llava-1.5-7b-hf's exact geometry (CLIP ViT-L/14-336, 2-layer projector, Llama-2-7B: 4096
    // wide, 32 layers, 32 heads, 11008 MLP, vocab 32064) with random F16 weights: ~7.1e9
    // parameters, 14 GB on disk. For GPU benchmarks (scripts/gpu-check.sh), not for CPUs.
    MakeModelPreset b7;
    b7.name = "llava-1.5-7b-geom";
    b7.description = "llava-1.5-7b-hf's exact geometry (ViT-L/14-336, Llama 4096x32, 32 heads), random F16, 14 GB";
    b7.dtype = "F16";
    out.push_back(b7);

    // LLaVA-NeXT: llava-v1.6's pinpoints (336x672, 672x336, 672x672, 1008x336, 336x1008 in tiles
    // of 336), so a picture makes up to 576 + 2304 + 48 = 2928 image tokens (the paper's nominal
    // 2880 = 5 x 576), with llava-geom-small's widths.
    const std::vector<std::pair<int, int>> v16_tiles = {{1, 2}, {2, 1}, {2, 2}, {3, 1}, {1, 3}};
    MakeModelPreset next_small = small;
    next_small.name = "next-geom-small";
    next_small.description = "benchmark preset: LLaVA-NeXT geometry (anyres 336/14, v1.6 pinpoints: up to 2928 "
                             "image tokens), text 512x8, vocab 4096";
    next_small.next_tiles = v16_tiles;
    next_small.max_positions = 4096;
    out.push_back(next_small);

    MakeModelPreset next_tiny = tiny;
    next_tiny.name = "next-tiny";
    next_tiny.description = "LLaVA-NeXT at test size: tiles 56/14 (16 tokens each), v1.6 pinpoints in tiles, "
                            "text 64x3, vocab 512; up to 16 + 64 + 8 = 88 image tokens";
    next_tiny.next_tiles = v16_tiles;
    out.push_back(next_tiny);

    MakeModelPreset next_mistral = next_tiny;
    next_mistral.name = "next-tiny-mistral";
    next_mistral.description = "next-tiny with a Mistral decoder whose sliding window (48) is shorter than a prompt";
    next_mistral.text_model_type = "mistral";
    next_mistral.sliding_window = 48;
    out.push_back(next_mistral);
    return out;
}

// Hand-written sentences about pictures; the generator below adds volume and variety.
const char* kCorpusSentences = R"(A chat between a curious human and an artificial intelligence assistant.
The assistant gives helpful, detailed, and polite answers to the human's questions.
USER: What is in the image? ASSISTANT: The image shows a red ball on a wooden table.
USER: How many cats are there? ASSISTANT: There are two cats sitting on the sofa.
USER: What colour is the car? ASSISTANT: The car is blue with white stripes.
USER: Describe the image in detail. ASSISTANT: A small brown dog is running across a green field.
USER: Where is the cup? ASSISTANT: The cup is on the left side of the plate.
USER: Is there a person in the picture? ASSISTANT: Yes, a woman is standing near the window.
USER: What is the man holding? ASSISTANT: He is holding an umbrella and a newspaper.
The photo was taken outdoors on a sunny afternoon, and the sky is clear and bright.
In the background there are tall buildings, a bridge, and several trees with orange leaves.
In the foreground, a child wearing a yellow jacket is playing with a kite.
The kitchen has white cabinets, a silver refrigerator, and a bowl of fresh fruit.
Three apples, two bananas, and one orange are arranged in a ceramic bowl.
A black cat is sleeping on a striped blanket next to a stack of books.
The street is busy with cars, buses, bicycles, and people walking on the sidewalk.
A red traffic light hangs above the intersection, and a taxi is waiting.
The beach is covered with soft sand; small waves are rolling onto the shore.
Two boats are floating on the lake, and mountains rise in the distance.
The living room contains a grey couch, a lamp, a rug, and a large television.
On the desk there is a laptop, a keyboard, a mouse, and a cup of coffee.
The bird is perched on a branch at the top right corner of the picture.
A group of friends is sitting around a table, eating pizza and laughing.
The sign on the door says "Open", written in large green letters.
The clock on the wall shows ten minutes past three.
A train is crossing a long bridge over a wide river at sunset.
The garden is full of flowers: roses, tulips, daisies, and sunflowers.
An old man with a grey beard is reading a book on a park bench.
The horse is brown and white, and it is eating grass near a wooden fence.
There is snow on the ground, and the trees are bare in the winter light.
A plane is flying high above the clouds, leaving a thin white trail.
The pizza has tomatoes, cheese, olives, mushrooms, and slices of pepper.
A girl in a pink dress is holding a balloon in her right hand.
The bottom left corner of the image is dark, while the centre is well lit.
A dog is catching a frisbee in mid-air, its ears flying in the wind.
The room is empty except for a chair and a small round table.
Several bottles, glasses, and plates are on the counter of the bar.
The shelf holds jars of jam, bags of rice, and boxes of cereal.
A cyclist in a helmet is riding down a narrow road through the hills.
The elephant is standing in the water, spraying itself with its trunk.
It is difficult to tell, but the object appears to be a metal key.
The answer is no: there is no cat in this image, only a dog.
Yes, the person is smiling and looking directly at the camera.
The text in the picture is too small to read clearly.
Overall, the scene looks calm, quiet, and peaceful.
)";

const char* kNumbers[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                          "ten", "eleven", "twelve", "twenty", "a few", "several", "many", "no"};
const char* kColours[] = {"red", "blue", "green", "yellow", "black", "white", "grey", "brown", "orange",
                          "pink", "purple", "golden", "silver", "dark", "light", "bright"};
const char* kObjects[] = {"ball", "cat", "dog", "car", "tree", "bird", "apple", "chair", "cup", "table",
                          "box", "window", "bed", "flower", "door", "bag", "road", "house", "boat", "horse",
                          "cow", "sheep", "bottle", "glass", "plate", "spoon", "fork", "knife", "book",
                          "phone", "laptop", "lamp", "clock", "bicycle", "truck", "bus", "train", "plane",
                          "kite", "umbrella", "hat", "shoe", "shirt", "jacket", "banana", "orange", "cake",
                          "sandwich", "pizza", "carrot", "banana", "vase", "pillow", "blanket", "mirror",
                          "sink", "toilet", "oven", "fridge", "bench", "fence", "sign", "bridge", "tower",
                          "mountain", "river", "lake", "cloud", "rock", "giraffe", "zebra", "elephant", "bear",
                          "teddy bear", "keyboard", "mouse", "remote", "backpack", "suitcase", "skateboard",
                          "surfboard", "tennis racket", "baseball bat", "traffic light", "fire hydrant"};
const char* kPlaces[] = {"on the table", "under the chair", "next to the window", "behind the door",
                         "in front of the house", "on the left", "on the right", "in the centre",
                         "at the top of the image", "at the bottom of the image", "near the river",
                         "in the kitchen", "in the garden", "on the street", "in the sky", "on the grass",
                         "beside the bed", "inside the box", "on the shelf", "in the corner"};
const char* kVerbs[] = {"is sitting", "is standing", "is lying", "is resting", "can be seen", "appears",
                        "is placed", "is hanging", "is floating", "is waiting", "is moving", "is parked"};
const char* kQuestions[] = {"What is", "Where is", "How many", "What colour is", "Is there", "Can you see",
                            "Describe", "Which side is", "Why is", "What kind of"};

}  // namespace

std::string make_model_corpus() {
    std::ostringstream os;
    for (int rep = 0; rep < 3; ++rep) os << kCorpusSentences;
    // std::mt19937's raw output is fixed by the standard, so the corpus is the same everywhere.
    std::mt19937 rng(20240601);
    auto pick = [&](auto& list) { return list[rng() % (sizeof(list) / sizeof(list[0]))]; };
    for (int i = 0; i < 4000; ++i) {
        std::string object = pick(kObjects), colour = pick(kColours), number = pick(kNumbers);
        switch (rng() % 6) {
            case 0: os << "The " << colour << " " << object << " " << pick(kVerbs) << " " << pick(kPlaces) << ".\n"; break;
            case 1: os << "There are " << number << " " << object << "s " << pick(kPlaces) << ".\n"; break;
            case 2: os << "USER: " << pick(kQuestions) << " the " << object << "? ASSISTANT: The " << object
                       << " is " << colour << " and " << pick(kVerbs) << " " << pick(kPlaces) << ".\n"; break;
            case 3: os << "I count " << rng() % 100 << " " << object << "s and " << rng() % 20 << " "
                       << pick(kObjects) << "s in this picture.\n"; break;
            case 4: os << "A " << colour << " " << object << " and a " << pick(kColours) << " " << pick(kObjects)
                       << " are " << pick(kPlaces) << ", about " << rng() % 50 << " cm apart.\n"; break;
            default: os << "In the image, " << number << " " << colour << " " << object << "s "
                        << (rng() % 2 ? "are" : "were") << " " << pick(kPlaces) << "; the photo is "
                        << (rng() % 2 ? "sharp" : "blurry") << ".\n"; break;
        }
    }
    return os.str();
}

std::vector<std::string> make_model_preset_names() {
    std::vector<std::string> names;
    for (const auto& p : all_presets()) names.push_back(p.name);
    return names;
}

MakeModelPreset make_model_preset(const std::string& name) {
    std::string valid;
    for (const auto& p : all_presets()) {
        if (p.name == name) return p;
        valid += (valid.empty() ? "" : ", ") + p.name;
    }
    throw Error(str_cat("make-model: unknown preset '", name, "' (valid: ", valid, ")"));
}

namespace {

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

std::string find_on_path(const std::string& exe) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    std::istringstream is(dirs);
    std::string dir;
    while (std::getline(is, dir, ':')) {
        if (dir.empty()) continue;
        fs::path p = fs::path(dir) / exe;
        if (::access(p.c_str(), X_OK) == 0) return p.string();
    }
    return "";
}

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
    if (!f) throw Error(str_cat(path.string(), ": cannot write"));
}

// Trains tokenizer.model in `dir` (relative paths, so the stored trainer spec does not depend on
// where the temporary directory happens to be). Returns the number of SentencePiece pieces.
int train_tokenizer(const fs::path& dir, int max_pieces) {
    std::string spm_train = find_on_path("spm_train");
    if (spm_train.empty())
        throw Error("make-model: spm_train not found on PATH (apt-get install sentencepiece)");
    fs::path work = dir / "spm";
    fs::create_directories(work);
    write_text(work / "corpus.txt", make_model_corpus());
    // LLaMA's settings: BPE, byte fallback, digits split, no normalisation, whitespace kept.
    std::string cmd = str_cat("cd ", shell_quote(work.string()), " && ", shell_quote(spm_train),
                              " --input=corpus.txt --model_prefix=tokenizer --model_type=bpe",
                              " --vocab_size=", max_pieces, " --hard_vocab_limit=false",
                              " --byte_fallback=true --split_digits=true --normalization_rule_name=identity",
                              " --add_dummy_prefix=true --remove_extra_whitespaces=false",
                              " --allow_whitespace_only_pieces=true --character_coverage=1.0",
                              " --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --num_threads=1",
                              " --minloglevel=2 > spm_train.log 2>&1");
    int rc = std::system(cmd.c_str());
    if (rc != 0) {
        std::ifstream log(work / "spm_train.log");
        std::string line, last;
        while (std::getline(log, line))
            if (!line.empty()) last = line;
        throw Error(str_cat("make-model: spm_train failed (status ", rc, "): ", last));
    }
    // tokenizer.vocab has one "piece<TAB>score" line per id.
    std::ifstream vocab(work / "tokenizer.vocab");
    int pieces = 0;
    std::string line;
    while (std::getline(vocab, line)) ++pieces;
    if (pieces < 259) throw Error(str_cat("make-model: spm_train produced only ", pieces, " pieces"));
    fs::rename(work / "tokenizer.model", dir / "tokenizer.model");
    fs::remove_all(work);
    return pieces;
}

LlavaConfig preset_config(const MakeModelPreset& p, int sp_pieces) {
    LlavaConfig c;
    c.vision.hidden_size = p.vision_hidden;
    c.vision.intermediate_size = p.vision_intermediate;
    c.vision.num_hidden_layers = p.vision_layers;
    c.vision.num_attention_heads = p.vision_heads;
    c.vision.image_size = p.image_size;
    c.vision.patch_size = p.patch_size;
    c.vision.projection_dim = p.projection_dim;
    c.text.vocab_size = p.text_vocab;
    c.text.hidden_size = p.text_hidden;
    c.text.intermediate_size = p.text_intermediate;
    c.text.num_hidden_layers = p.text_layers;
    c.text.num_attention_heads = p.text_heads;
    c.text.num_key_value_heads = p.text_kv_heads;
    c.text.max_position_embeddings = p.max_positions;
    c.text.rms_norm_eps = p.rms_norm_eps;
    c.image_token_index = sp_pieces;
    c.pad_token_id = sp_pieces + 1;
    c.image_seq_length = c.vision.num_patches();
    c.random_weights = true;
    c.torch_dtype = p.dtype == "F16" ? "float16" : p.dtype == "BF16" ? "bfloat16" : "float32";
    c.name_or_path = "dartlens/make-model-" + p.name;
    if (!p.next_tiles.empty()) {
        c.model_type = "llava_next";
        for (const auto& [rows, cols] : p.next_tiles)
            c.image_grid_pinpoints.push_back({rows * p.image_size, cols * p.image_size});
    }
    c.text.model_type = p.text_model_type;
    c.text.sliding_window = p.sliding_window;
    return c;
}

// Draws every tensor in llava-hf state_dict order from one seeded generator.
struct WeightDrawer {
    at::Generator gen;
    at::ScalarType stored;
    std::vector<std::pair<std::string, at::Tensor>> tensors;

    at::Tensor normal(at::IntArrayRef shape) {
        return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat));
    }
    void add(const std::string& name, at::Tensor t) { tensors.emplace_back(name, t.to(stored).contiguous()); }
    void linear(const std::string& prefix, int64_t out, int64_t in, bool bias) {
        add(prefix + ".weight", normal({out, in}) / std::sqrt(static_cast<double>(in)));
        if (bias) add(prefix + ".bias", normal({out}) * 0.1);
    }
    void norm(const std::string& prefix, int64_t n, bool bias) {
        add(prefix + ".weight", normal({n}) * 0.1 + 1.0);
        if (bias) add(prefix + ".bias", normal({n}) * 0.1);
    }
};

std::vector<std::pair<std::string, at::Tensor>> draw_weights(const LlavaConfig& c, at::ScalarType stored,
                                                             uint64_t seed) {
    WeightDrawer w{at::detail::createCPUGenerator(seed), stored, {}};
    const int64_t C = c.vision.hidden_size, I = c.vision.intermediate_size, P = c.vision.patch_size;
    const std::string v = "vision_tower.vision_model.";
    // CLIP: every layer and post_layernorm are saved, as HF does, although LLaVA uses neither the
    // last layer nor post_layernorm.
    w.add(v + "embeddings.class_embedding", w.normal({C}));
    w.add(v + "embeddings.patch_embedding.weight", w.normal({C, 3, P, P}) / std::sqrt(static_cast<double>(3 * P * P)));
    w.add(v + "embeddings.position_embedding.weight", w.normal({c.vision.num_patches() + 1, C}) * 0.5);
    w.norm(v + "pre_layrnorm", C, true);
    for (int l = 0; l < c.vision.num_hidden_layers; ++l) {
        std::string p = v + "encoder.layers." + std::to_string(l) + ".";
        w.linear(p + "self_attn.k_proj", C, C, true);
        w.linear(p + "self_attn.v_proj", C, C, true);
        w.linear(p + "self_attn.q_proj", C, C, true);
        w.linear(p + "self_attn.out_proj", C, C, true);
        w.norm(p + "layer_norm1", C, true);
        w.linear(p + "mlp.fc1", I, C, true);
        w.linear(p + "mlp.fc2", C, I, true);
        w.norm(p + "layer_norm2", C, true);
    }
    w.norm(v + "post_layernorm", C, true);

    const int64_t d = c.text.hidden_size, V = c.text.vocab_size, D = c.text.head_dim();
    const int64_t H = c.text.num_attention_heads, Hkv = c.text.num_key_value_heads, F = c.text.intermediate_size;
    w.linear("multi_modal_projector.linear_1", d, C, true);
    w.linear("multi_modal_projector.linear_2", d, d, true);

    const std::string t = "language_model.model.";
    w.add(t + "embed_tokens.weight", w.normal({V, d}) * 0.5);
    for (int l = 0; l < c.text.num_hidden_layers; ++l) {
        std::string p = t + "layers." + std::to_string(l) + ".";
        w.linear(p + "self_attn.q_proj", H * D, d, false);
        w.linear(p + "self_attn.k_proj", Hkv * D, d, false);
        w.linear(p + "self_attn.v_proj", Hkv * D, d, false);
        w.linear(p + "self_attn.o_proj", d, H * D, false);
        w.linear(p + "mlp.gate_proj", F, d, false);
        w.linear(p + "mlp.up_proj", F, d, false);
        w.linear(p + "mlp.down_proj", d, F, false);
        w.norm(p + "input_layernorm", d, false);
        w.norm(p + "post_attention_layernorm", d, false);
    }
    w.norm(t + "norm", d, false);
    // lm_head rows of ids that should never be generated are zero: <unk>, <s>, <image>, <pad> and
    // the padding rows beyond the tokenizer. Their logit is then 0, below the maximum of hundreds
    // of random logits, so greedy answers are SentencePiece words (and </s> may still end them).
    at::Tensor lm_head = w.normal({V, d}) / std::sqrt(static_cast<double>(d));
    lm_head.index_fill_(0, at::tensor(std::vector<int64_t>{0, 1}, at::kLong), 0.0);
    lm_head.narrow(0, c.image_token_index, V - c.image_token_index).zero_();
    w.add("language_model.lm_head.weight", lm_head);
    if (c.is_next()) w.add("image_newline", w.normal({d}) / std::sqrt(static_cast<double>(d)));
    return std::move(w.tensors);
}

std::string tokenizer_config_json(int image_id, int pad_id, int max_length) {
    auto token = [](const std::string& content, bool special) {
        return nlohmann::json{{"content", content}, {"lstrip", false}, {"normalized", false},
                              {"rstrip", false}, {"single_word", false}, {"special", special}};
    };
    nlohmann::json decoder = nlohmann::json::object();
    decoder["0"] = token("<unk>", true);
    decoder["1"] = token("<s>", true);
    decoder["2"] = token("</s>", true);
    decoder[std::to_string(image_id)] = token("<image>", true);
    decoder[std::to_string(pad_id)] = token("<pad>", true);
    nlohmann::json j = {
        {"add_bos_token", true},
        {"add_eos_token", false},
        {"added_tokens_decoder", decoder},
        {"bos_token", "<s>"},
        {"clean_up_tokenization_spaces", false},
        {"eos_token", "</s>"},
        {"legacy", true},
        {"model_max_length", max_length},
        {"pad_token", "<pad>"},
        {"padding_side", "left"},
        {"processor_class", "LlavaProcessor"},
        {"sp_model_kwargs", nlohmann::json::object()},
        {"tokenizer_class", "LlamaTokenizer"},
        {"unk_token", "<unk>"},
        {"use_default_system_prompt", false},
    };
    return j.dump(2) + "\n";
}

std::string special_tokens_map_json() {
    auto token = [](const std::string& content) {
        return nlohmann::json{{"content", content}, {"lstrip", false}, {"normalized", false},
                              {"rstrip", false}, {"single_word", false}};
    };
    nlohmann::json j = {{"bos_token", token("<s>")}, {"eos_token", token("</s>")},
                        {"pad_token", token("<pad>")}, {"unk_token", token("<unk>")}};
    return j.dump(2) + "\n";
}

std::string preprocessor_config_json(const LlavaConfig& c) {
    const int image_size = c.vision.image_size;
    nlohmann::json j = {
        {"crop_size", {{"height", image_size}, {"width", image_size}}},
        {"do_center_crop", true},
        {"do_convert_rgb", true},
        {"do_normalize", true},
        {"do_rescale", true},
        {"do_resize", true},
        {"image_mean", {0.48145466, 0.4578275, 0.40821073}},
        {"image_processor_type", "CLIPImageProcessor"},
        {"image_std", {0.26862954, 0.26130258, 0.27577711}},
        {"processor_class", "LlavaProcessor"},
        {"resample", 3},
        {"rescale_factor", 1.0 / 255.0},
        {"size", {{"shortest_edge", image_size}}},
    };
    if (c.is_next()) {  // what LlavaNextImageProcessor.save_pretrained adds
        j["image_processor_type"] = "LlavaNextImageProcessor";
        j["processor_class"] = "LlavaNextProcessor";
        j["do_pad"] = true;
        nlohmann::json pins = nlohmann::json::array();
        for (const Resolution& r : c.image_grid_pinpoints) pins.push_back({r.height, r.width});
        j["image_grid_pinpoints"] = pins;
    }
    return j.dump(2) + "\n";
}

std::string generation_config_json(int pad_id) {
    nlohmann::json j = {{"_from_model_config", true}, {"bos_token_id", 1}, {"eos_token_id", 2},
                        {"pad_token_id", pad_id}, {"transformers_version", "4.40.2"}};
    return j.dump(2) + "\n";
}

std::string readme(const MakeModelPreset& p, const LlavaConfig& c, uint64_t seed, int64_t params) {
    return str_cat(
        "# Random weights, generated by dartlens-cli make-model\n\n",
        "This is NOT a trained model: every weight is random (preset `", p.name, "`, seed ", seed, ").\n",
        "It has the exact llava-hf layout (config.json, model.safetensors, tokenizer files) and the\n",
        "geometry of the preset, so that loading, pruning and timing can be exercised without a download.\n",
        "Its answers are random words from the tokenizer's vocabulary.\n\n",
        "- ", p.description, "\n",
        "- image ", c.vision.image_size, ", patch ", c.vision.patch_size, " -> ", c.vision.num_patches(),
        " image tokens; vision hidden ", c.vision.hidden_size, " x ", c.vision.num_hidden_layers, " layers\n",
        "- text hidden ", c.text.hidden_size, " x ", c.text.num_hidden_layers, " layers, ",
        c.text.num_attention_heads, " heads (", c.text.num_key_value_heads, " kv), intermediate ",
        c.text.intermediate_size, ", vocab ", c.text.vocab_size, "\n",
        "- tokenizer: SentencePiece BPE trained by spm_train on an embedded English corpus; <image> = ",
        c.image_token_index, ", <pad> = ", c.pad_token_id, "\n",
        "- ", params, " parameters stored as ", p.dtype, "\n\n",
        "Regenerate: `dartlens-cli make-model --preset ", p.name, " --seed ", seed, " --out DIR`\n");
}

}  // namespace

void make_model(const std::string& preset_name, const std::string& out_dir, uint64_t seed) {
    MakeModelPreset p = make_model_preset(preset_name);
    if (out_dir.empty()) throw Error("make-model: the output directory is empty");
    fs::path out = fs::absolute(out_dir).lexically_normal();
    if (out.filename().empty()) out = out.parent_path();
    std::error_code ec;
    if (fs::exists(out, ec)) {
        if (!fs::is_directory(out, ec)) throw Error(str_cat(out.string(), ": exists and is not a directory"));
        if (!fs::is_empty(out, ec))
            throw Error(str_cat(out.string(), ": directory exists and is not empty; refusing to overwrite"));
    }
    fs::create_directories(out.parent_path(), ec);
    fs::path tmp = out.parent_path() / str_cat(".", out.filename().string(), ".tmp-", ::getpid());
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    if (ec) throw Error(str_cat(tmp.string(), ": cannot create: ", ec.message()));

    try {
        int pieces = train_tokenizer(tmp, p.text_vocab - 2);
        if (pieces + 2 > p.text_vocab)
            throw Error(str_cat("make-model: tokenizer has ", pieces, " pieces, more than vocab ", p.text_vocab, " - 2"));
        LlavaConfig config = preset_config(p, pieces);
        at::ScalarType stored = safetensors_dtype_to_scalar(p.dtype);
        auto tensors = draw_weights(config, stored, seed);
        int64_t params = 0;
        for (const auto& nt : tensors) params += nt.second.numel();
        write_safetensors((tmp / "model.safetensors").string(), tensors, {{"format", "pt"}});
        tensors.clear();

        write_text(tmp / "config.json", config.to_hf_json().dump(2) + "\n");
        nlohmann::json added = {{"<image>", pieces}, {"<pad>", pieces + 1}};
        write_text(tmp / "added_tokens.json", added.dump(2) + "\n");
        write_text(tmp / "tokenizer_config.json", tokenizer_config_json(pieces, pieces + 1, p.max_positions));
        write_text(tmp / "special_tokens_map.json", special_tokens_map_json());
        write_text(tmp / "preprocessor_config.json", preprocessor_config_json(config));
        write_text(tmp / "generation_config.json", generation_config_json(pieces + 1));
        write_text(tmp / "README.md", readme(p, config, seed, params));

        if (fs::exists(out, ec)) fs::remove(out);  // empty (checked above)
        fs::rename(tmp, out);
    } catch (...) {
        fs::remove_all(tmp, ec);
        throw;
    }
}

}  // namespace dl
