// The scene world: procedural pictures of simple objects with exact ground truth, and questions
// about them in LLaVA's evaluation styles (POPE existence, describe, colour, count, position).
//
// A scene is a background (sky, grass, road, sea, room, texture or noise; often a sky/ground
// split) with 1 to 8 objects of 16 classes in 10 named colours (each class's body carries a fill
// pattern of its own: stripes, bands, dots, checks or hatching in a shade of its colour, the cup
// plain), drawn with OpenCV (integer
// coordinates, cv::LINE_8) from a std::mt19937_64 whose output is mapped to integers by our own
// code, so the same seed gives the same pixels and labels on every machine. Scene i is drawn from
// scene_seed(S, i) alone, so it does not depend on how many scenes are generated.
//
// Class frequencies are deliberately non-uniform and correlated: each scene first draws a theme
// (street, park, beach, sky, room or mixed) which fixes its background and the class weights, so
// cars come with houses and people, boats with fish and the sun, cups with cats. POPE's popular
// and adversarial negatives therefore differ from its random ones.
//
// Objects are drawn in order, later ones over earlier ones; a placement that would leave an
// earlier object less than half visible (pixel count of its own shape) is redrawn elsewhere or
// dropped, so every listed object is at least 50% visible. Boxes are the exact extent of the
// object's drawn pixels (before occlusion), inside the image, x1/y1 exclusive.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace dl {

struct SceneObject {
    std::string cls;            // one of scene_classes()
    std::string color;          // one of scene_colors(): the colour of the object's main body
    std::array<int, 4> box{};   // [x0, y0, x1, y1] pixels, x1/y1 exclusive, inside the image
};

struct Scene {
    int index = 0;                  // position in the generated set
    uint64_t seed = 0;              // scene_seed(set seed, index): everything below derives from it
    std::string image;              // file name, "scene_000042.png"
    std::string theme, background;  // scene_themes() entry and the background kind drawn
    int width = 0, height = 0;
    std::vector<SceneObject> objects;  // in drawing order (later ones may cover earlier ones)
    cv::Mat pixels;                 // CV_8UC3 BGR, height x width; empty once written out
    cv::Mat owner;                  // CV_8UC1: per pixel, 1 + index in objects of the object seen
                                    // there after occlusion, 0 for background; empty once written
};

// POPE existence question: "Is there a cat in the image?" with label yes/no.
struct PopeQuestion {
    int scene = 0;
    std::string cls, text, category;  // category: "random" | "popular" | "adversarial"
    bool label = false;
};

// Other question kinds with one exact answer.
struct SceneQuestion {
    int scene = 0;
    std::string kind;  // "describe" | "color" | "count" | "position"
    std::string text, answer;
};

// The 16 classes, 10 colours and 6 themes, in their fixed order (ties are broken by this order).
const std::vector<std::string>& scene_classes();
const std::vector<std::string>& scene_colors();
const std::vector<std::string>& scene_themes();

// The per-scene seed: a splitmix64 mix of (set seed, index).
uint64_t scene_seed(uint64_t seed, int index);

// Scene `index` of the set with seed `seed`, width x height pixels (each in [112, 4096]).
Scene scene_generate(uint64_t seed, int index, int width, int height);

// Draws one object into `bgr` (CV_8UC3) inside `target` and returns it with its exact drawn box.
// dl::Error naming the class or colour when unknown.
SceneObject scene_draw_object(cv::Mat& bgr, const std::string& cls, const std::string& color, const cv::Rect& target);

// "There is a red car, a yellow sun and two green trees." (groups by class and colour, in order
// of first appearance).
std::string scene_describe(const std::vector<SceneObject>& objects);

// POPE questions over a set, category-major (all random, then popular, then adversarial), each
// scene contributing k = min(3, distinct classes present) positives and k negatives per category:
//   random:      k absent classes drawn uniformly (from the scene's seed);
//   popular:     the k absent classes present in the most scenes of the set;
//   adversarial: the k absent classes with the highest co-occurrence with the scene's classes,
//                sum over present classes p of #scenes of the set containing both;
// ties broken by scene_classes() order. The positives (drawn from the scene's seed) are the same
// in all three categories; within a scene questions alternate yes, no, yes, no.
std::vector<PopeQuestion> scene_pope_questions(const std::vector<Scene>& scenes);

// Describe (1), colour (classes present exactly once, up to 2), count (up to 2 present classes),
// position (left/right of another unique object when their boxes do not overlap horizontally;
// left/middle/right third when the box lies inside one third). Answers: colour name, digits,
// "left"/"right"/"middle".
std::vector<SceneQuestion> scene_other_questions(const Scene& scene);

// "448x336" -> 448, 336; dl::Error naming --size when malformed or outside [112, 4096].
void scene_parse_size(const std::string& text, int* width, int* height);

struct ScenesArgs {
    int count = 0;
    uint64_t seed = 0;
    std::string out_dir;
    int width = 448, height = 336;
    bool overwrite = false;
    bool masks = false;  // also write scene_NNNNNN_mask.png: Scene::owner (object index + 1 per pixel)
};

// Writes the set: out_dir/scene_NNNNNN.png (with masks: scene_NNNNNN_mask.png), scenes.jsonl,
// questions.jsonl (POPE format with category), questions_other.jsonl and instances.json (COCO
// format: CHAIR's ground truth with resources/chair/scenes_synonyms.txt). Refuses a non-empty out_dir unless overwrite (then it removes
// only its own earlier outputs). Returns the scenes without pixels.
std::vector<Scene> scenes_write(const ScenesArgs& args);

}  // namespace dl
