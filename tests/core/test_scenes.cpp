// The scene world (core/scenes/scenes.h): determinism, drawing, labels and questions. The POPE negatives
// and the answers are checked against statistics recomputed here from scenes.jsonl, never against
// the generator's own tables.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "core/common.h"
#include "core/scenes/scenes.h"
#include "test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using dltest::cli;

using dltest::read_jsonl;

std::string write_set(const std::string& name, int count, uint64_t seed) {
    const std::string dir = dltest::scratch_dir(name) + "/set";
    dl::ScenesArgs a;
    a.count = count, a.seed = seed, a.out_dir = dir;
    dl::scenes_write(a);
    return dir;
}

std::string expect_error(const std::string& args) { return dltest::expect_cli_error(args); }

std::string plural(const std::string& cls) { return cls == "person" ? "people" : cls == "fish" ? "fish" : cls + "s"; }

TEST(Scenes, SameSeedSameBytesAndSceneIndependentOfCount) {
    const std::string a = write_set("scenes-det-a", 12, 42), b = write_set("scenes-det-b", 12, 42);
    const std::string c = write_set("scenes-det-c", 5, 42), d = write_set("scenes-det-d", 5, 43);
    size_t files = 0;
    for (const auto& e : fs::directory_iterator(a)) {
        const std::string name = e.path().filename().string();
        EXPECT_EQ(dltest::read_file(a + "/" + name), dltest::read_file(b + "/" + name)) << name;
        ++files;
    }
    EXPECT_EQ(files, 12u + 4u);  // pictures, scenes.jsonl, questions.jsonl, questions_other.jsonl, instances.json
    for (int i = 0; i < 5; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "scene_%06d.png", i);
        EXPECT_EQ(dltest::read_file(a + "/" + name), dltest::read_file(c + "/" + name)) << name;
        EXPECT_NE(dltest::read_file(c + "/" + name), dltest::read_file(d + "/" + name)) << name;
    }
    const std::vector<json> sa = read_jsonl(a + "/scenes.jsonl"), sc = read_jsonl(c + "/scenes.jsonl");
    ASSERT_EQ(sc.size(), 5u);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(sa[i], sc[i]);
    // Describe/colour/count/position questions depend on their scene alone.
    const std::vector<json> qa = read_jsonl(a + "/questions_other.jsonl"), qc = read_jsonl(c + "/questions_other.jsonl");
    for (size_t i = 0; i < qc.size(); ++i) EXPECT_EQ(qa[i], qc[i]);
    // So does the scene in memory.
    const dl::Scene s1 = dl::scene_generate(42, 3, 448, 336), s2 = dl::scene_generate(42, 3, 448, 336);
    EXPECT_EQ(cv::norm(s1.pixels, s2.pixels, cv::NORM_INF), 0.0);
}

TEST(Scenes, LabelsCoverClassesColoursCountsAndStayInside) {
    std::map<std::string, int> classes, colors, themes, backgrounds;
    std::set<size_t> counts;
    int small = 0;
    for (int i = 0; i < 300; ++i) {
        const int w = i % 3 == 0 ? 336 : i % 3 == 1 ? 448 : 200, h = i % 3 == 2 ? 500 : 336;
        const dl::Scene s = dl::scene_generate(11, i, w, h);
        ASSERT_EQ(s.pixels.cols, w);
        ASSERT_EQ(s.pixels.rows, h);
        ASSERT_GE(s.objects.size(), 1u);
        ASSERT_LE(s.objects.size(), 8u);
        counts.insert(s.objects.size());
        ++themes[s.theme], ++backgrounds[s.background];
        for (const dl::SceneObject& o : s.objects) {
            ++classes[o.cls], ++colors[o.color];
            EXPECT_GE(o.box[0], 0);
            EXPECT_GE(o.box[1], 0);
            EXPECT_LE(o.box[2], w);
            EXPECT_LE(o.box[3], h);
            EXPECT_GT(o.box[2] - o.box[0], 5);
            EXPECT_GT(o.box[3] - o.box[1], 5);
            small += std::max(o.box[2] - o.box[0], o.box[3] - o.box[1]) <= 48;
        }
    }
    for (const std::string& c : dl::scene_classes()) EXPECT_GE(classes[c], 10) << c;
    for (const std::string& c : dl::scene_colors()) EXPECT_GE(colors[c], 10) << c;
    for (const std::string& t : dl::scene_themes()) EXPECT_GE(themes[t], 5) << t;
    EXPECT_EQ(dl::scene_classes().size(), 16u);
    EXPECT_EQ(dl::scene_colors().size(), 10u);
    EXPECT_EQ(counts.size(), 8u);  // every count 1..8 occurs
    EXPECT_GE(backgrounds.size(), 7u);
    EXPECT_GE(small, 100);  // objects only 2-3 patches wide are common
    // Non-uniform: the most frequent class occurs far more often than the rarest.
    int lo = 1 << 30, hi = 0;
    for (const auto& [c, n] : classes) lo = std::min(lo, n), hi = std::max(hi, n);
    EXPECT_GE(hi, 2 * lo);
}

// --masks: the owner map names, per pixel, the object seen there; its pixels lie inside that
// object's box, every object shows, the last-drawn (never covered) fills its box's extent exactly,
// and the map is as deterministic as the picture.
TEST(Scenes, OwnerMapsMatchBoxesAndDrawingOrder) {
    std::string dirs[2];
    for (int run = 0; run < 2; ++run) {
        dirs[run] = dltest::scratch_dir("scenes-masks-" + std::to_string(run)) + "/set";
        dl::ScenesArgs a;
        a.count = 30, a.seed = 77, a.out_dir = dirs[run], a.width = 336, a.height = 336, a.masks = true;
        dl::scenes_write(a);
    }
    const std::vector<json> scenes = read_jsonl(dirs[0] + "/scenes.jsonl");
    ASSERT_EQ(scenes.size(), 30u);
    for (const json& s : scenes) {
        const std::string image = s["image"];
        const std::string mask_name = image.substr(0, image.size() - 4) + "_mask.png";
        EXPECT_EQ(dltest::read_file(dirs[0] + "/" + mask_name), dltest::read_file(dirs[1] + "/" + mask_name));
        const cv::Mat owner = cv::imread(dirs[0] + "/" + mask_name, cv::IMREAD_UNCHANGED);
        ASSERT_EQ(owner.type(), CV_8UC1) << mask_name;
        ASSERT_EQ(owner.cols, 336);
        ASSERT_EQ(owner.rows, 336);
        const size_t n = s["objects"].size();
        double lo, hi;
        cv::minMaxLoc(owner, &lo, &hi);
        EXPECT_LE(hi, double(n)) << mask_name;
        for (size_t j = 0; j < n; ++j) {
            const std::vector<int> box = s["objects"][j]["box"];
            cv::Mat mine = owner == int(j + 1);
            ASSERT_GT(cv::countNonZero(mine), 0) << mask_name << " object " << j;
            const cv::Rect r = cv::boundingRect(mine);
            EXPECT_GE(r.x, box[0]) << mask_name << " object " << j;
            EXPECT_GE(r.y, box[1]);
            EXPECT_LE(r.x + r.width, box[2]);
            EXPECT_LE(r.y + r.height, box[3]);
            if (j + 1 == n) EXPECT_EQ(std::vector<int>({r.x, r.y, r.x + r.width, r.y + r.height}), box) << mask_name;
        }
    }
    // Without --masks no mask files are written.
    const std::string plain = write_set("scenes-masks-none", 3, 77);
    for (const auto& e : fs::directory_iterator(plain))
        EXPECT_EQ(e.path().filename().string().find("_mask"), std::string::npos) << e.path();
}

TEST(Scenes, EachClassDrawsInsideItsTightBox) {
    const cv::Scalar bg(37, 91, 143);  // a colour no object uses
    std::vector<cv::Mat> shapes;
    for (const std::string& cls : dl::scene_classes()) {
        for (const cv::Rect target : {cv::Rect(60, 40, 150, 110), cv::Rect(20, 30, 32, 28), cv::Rect(100, 20, 40, 90)}) {
            cv::Mat img(200, 260, CV_8UC3, bg);
            const dl::SceneObject o = dl::scene_draw_object(img, cls, "blue", target);
            cv::Mat diff;
            cv::absdiff(img, cv::Mat(img.size(), CV_8UC3, bg), diff);
            std::vector<cv::Mat> channels;
            cv::split(diff, channels);
            const cv::Mat changed = (channels[0] | channels[1] | channels[2]) > 0;
            const int total = cv::countNonZero(changed);
            const cv::Rect box(o.box[0], o.box[1], o.box[2] - o.box[0], o.box[3] - o.box[1]);
            ASSERT_GT(box.area(), 0) << cls;
            const int inside = cv::countNonZero(changed(box));
            EXPECT_GT(total, box.area() / 5) << cls << " " << target;
            EXPECT_GE(inside, total * 99 / 100) << cls << " " << target;
            // Tight: the box is the changed pixels' extent, within a pixel, and within the target.
            std::vector<cv::Point> nz;
            cv::findNonZero(changed, nz);
            const cv::Rect extent = cv::boundingRect(nz);
            EXPECT_LE(std::abs(extent.x - box.x) + std::abs(extent.y - box.y) + std::abs(extent.br().x - box.br().x) +
                          std::abs(extent.br().y - box.br().y), 4)
                << cls << " extent " << extent << " box " << box;
            EXPECT_TRUE((cv::Rect(target.x - 1, target.y - 1, target.width + 2, target.height + 2) & box) == box)
                << cls << " " << box << " outside " << target;
            // The named colour is the object's main colour: with its shade, more common than any
            // other changed colour.
            std::map<std::tuple<int, int, int>, int> hist;
            for (const cv::Point& p : nz) {
                const cv::Vec3b v = img.at<cv::Vec3b>(p);
                ++hist[{v[0], v[1], v[2]}];
            }
            // The body is the colour and, where the class's fill pattern is set, its shade (0.6 of
            // each channel, rounded down): every class but the cup shows both on a large body.
            const std::tuple<int, int, int> blue(215, 90, 30), shade(215 * 6 / 10, 90 * 6 / 10, 30 * 6 / 10);
            if (target.width >= 100) {
                int other = 0;  // the most common colour that is neither
                for (const auto& [colour, n] : hist)
                    if (colour != blue && colour != shade) other = std::max(other, n);
                EXPECT_GT(hist[blue] + hist[shade], other) << cls;
                EXPECT_GT(hist[blue], 0) << cls;
                if (cls == "cup") EXPECT_EQ(hist[shade], 0) << cls;
                else EXPECT_GT(hist[shade], hist[blue] / 8) << cls << ": no fill pattern";
                shapes.push_back(changed.clone());
            }
        }
    }
    // Classes are told apart by shape: same box, same colour, different pixels.
    for (size_t a = 0; a < shapes.size(); ++a)
        for (size_t b = a + 1; b < shapes.size(); ++b) {
            const double inter = cv::countNonZero(shapes[a] & shapes[b]), uni = cv::countNonZero(shapes[a] | shapes[b]);
            EXPECT_LT(inter / uni, 0.85) << dl::scene_classes()[a] << " vs " << dl::scene_classes()[b];
        }
    cv::Mat img(50, 50, CV_8UC3);
    EXPECT_THROW(dl::scene_draw_object(img, "giraffe", "red", {0, 0, 20, 20}), dl::Error);
    EXPECT_THROW(dl::scene_draw_object(img, "cat", "teal", {0, 0, 20, 20}), dl::Error);
}

TEST(Scenes, PopeNegativesFollowTheirSampling) {
    const std::string dir = write_set("scenes-pope", 150, 5);
    const std::vector<json> scenes = read_jsonl(dir + "/scenes.jsonl"), qs = read_jsonl(dir + "/questions.jsonl");
    ASSERT_EQ(scenes.size(), 150u);
    std::map<std::string, std::set<std::string>> present;
    std::map<std::string, int> freq;
    std::map<std::pair<std::string, std::string>, int> cooc;
    for (const json& s : scenes) {
        std::set<std::string> cls;
        for (const json& o : s["objects"]) cls.insert(o["class"].get<std::string>());
        present[s["image"]] = cls;
        for (const std::string& a : cls) {
            ++freq[a];
            for (const std::string& b : cls)
                if (a != b) ++cooc[{a, b}];
        }
    }
    // (image, category) -> yes classes, no classes
    std::map<std::pair<std::string, std::string>, std::pair<std::vector<std::string>, std::vector<std::string>>> by;
    int id = 0;
    for (const json& q : qs) {
        EXPECT_EQ(q["question_id"].get<int>(), ++id);
        const std::string text = q["text"], label = q["label"];
        const size_t a = text.find(' ', std::string("Is there ").size());
        ASSERT_EQ(text.rfind("Is there ", 0), 0u) << text;
        const std::string cls = text.substr(a + 1, text.find(" in the image?") - a - 1);
        ASSERT_TRUE(label == "yes" || label == "no");
        auto& entry = by[{q["image"], q["category"]}];
        (label == "yes" ? entry.first : entry.second).push_back(cls);
    }
    EXPECT_EQ(by.size(), 3 * scenes.size());
    int popular_differs = 0, adversarial_differs = 0;
    std::map<std::string, std::set<std::string>> random_negs, popular_negs;
    for (const auto& [key, yn] : by) {
        const auto& [image, category] = key;
        const std::set<std::string>& have = present[image];
        const size_t k = std::min<size_t>(3, have.size());
        EXPECT_EQ(yn.first.size(), k) << image << " " << category;
        EXPECT_EQ(yn.second.size(), k) << image << " " << category;
        for (const std::string& c : yn.first) EXPECT_TRUE(have.count(c)) << image << " " << c;
        for (const std::string& c : yn.second) EXPECT_FALSE(have.count(c)) << image << " " << c;
        const std::set<std::string> negs(yn.second.begin(), yn.second.end());
        EXPECT_EQ(negs.size(), k);
        std::map<std::string, long> score;  // per absent class
        for (const std::string& c : dl::scene_classes()) {
            if (have.count(c)) continue;
            if (category == "popular") score[c] = freq[c];
            if (category == "adversarial")
                for (const std::string& p : have) score[c] += cooc[{c, p}];
        }
        if (category == "random") random_negs[image] = negs;
        if (category == "popular") popular_negs[image] = negs;
        if (category == "random") continue;
        long lowest_chosen = 1L << 40, highest_left = -1;
        for (const auto& [c, v] : score) {
            if (negs.count(c)) lowest_chosen = std::min(lowest_chosen, v);
            else highest_left = std::max(highest_left, v);
        }
        EXPECT_GE(lowest_chosen, highest_left) << image << " " << category;
    }
    for (const auto& [image, negs] : random_negs) {
        popular_differs += negs != popular_negs[image];
        const auto& adv = by[{image, "adversarial"}].second;
        adversarial_differs += std::set<std::string>(adv.begin(), adv.end()) != popular_negs[image];
    }
    // The three samplings really differ (themes make co-occurrence non-uniform).
    EXPECT_GE(popular_differs, 100);
    EXPECT_GE(adversarial_differs, 30);
}

TEST(Scenes, AnswersMatchTheObjects) {
    const std::string dir = write_set("scenes-answers", 80, 9);
    std::map<std::string, json> scenes;
    for (const json& s : read_jsonl(dir + "/scenes.jsonl")) scenes[s["image"]] = s;
    std::map<std::string, int> kinds;
    for (const json& q : read_jsonl(dir + "/questions_other.jsonl")) {
        const json& s = scenes.at(q["image"]);
        const std::string text = q["text"], answer = q["answer"], kind = q["kind"];
        ++kinds[kind];
        std::map<std::string, int> count;
        for (const json& o : s["objects"]) ++count[o["class"].get<std::string>()];
        auto only = [&](const std::string& cls) -> const json& {
            EXPECT_EQ(count[cls], 1) << text;
            for (const json& o : s["objects"])
                if (o["class"] == cls) return o;
            throw std::runtime_error("no " + cls);
        };
        if (kind == "count") {
            bool found = false;
            for (const std::string& c : dl::scene_classes())
                if (text == "How many " + plural(c) + " are there?") {
                    EXPECT_EQ(answer, std::to_string(count[c])) << text;
                    found = true;
                }
            EXPECT_TRUE(found) << text;
        } else if (kind == "color") {
            const std::string cls = text.substr(std::string("What color is the ").size(),
                                                text.size() - std::string("What color is the ?").size());
            EXPECT_EQ(answer, only(cls)["color"].get<std::string>()) << text;
        } else if (kind == "position" && text.rfind("Where is the ", 0) == 0) {
            const std::string cls = text.substr(13, text.find(':') - 13);
            const json& box = only(cls)["box"];
            const int w = s["width"], x0 = box[0], x1 = box[2];
            if (answer == "left") EXPECT_LE(x1, w / 3) << text;
            else if (answer == "right") EXPECT_GE(x0, w - w / 3) << text;
            else EXPECT_TRUE(answer == "middle" && x0 >= w / 3 && x1 <= w - w / 3) << text << " " << answer;
        } else if (kind == "position") {
            // "Is the X to the left or to the right of the Y?"
            const size_t to = text.find(" to the left");
            const std::string x = text.substr(7, to - 7);
            const std::string y = text.substr(text.rfind("of the ") + 7, text.size() - text.rfind("of the ") - 8);
            const json &bx = only(x)["box"], &by = only(y)["box"];
            if (answer == "left") EXPECT_LE(bx[2].get<int>(), by[0].get<int>()) << text;
            else EXPECT_TRUE(answer == "right" && by[2].get<int>() <= bx[0].get<int>()) << text << " " << answer;
        } else {
            ASSERT_EQ(kind, "describe");
            EXPECT_EQ(text, "What objects are in this picture?");
            // Every (colour, class) group is named with its number.
            std::map<std::pair<std::string, std::string>, int> groups;
            for (const json& o : s["objects"]) ++groups[{o["color"], o["class"]}];
            const char* words[] = {"", "", "two", "three", "four", "five", "six", "seven", "eight"};
            for (const auto& [g, n] : groups) {
                const std::string phrase = n == 1 ? " " + g.first + " " + g.second
                                                  : std::string(words[n]) + " " + g.first + " " + plural(g.second);
                EXPECT_NE(answer.find(phrase), std::string::npos) << answer << " lacks '" << phrase << "'";
            }
            EXPECT_EQ(answer.back(), '.');
        }
    }
    EXPECT_EQ(kinds["describe"], 80);
    for (const char* k : {"color", "count", "position"}) EXPECT_GE(kinds[k], 40) << k;
    EXPECT_EQ(dl::scene_describe({{"car", "red", {}}, {"sun", "yellow", {}}, {"tree", "green", {}}, {"tree", "green", {}}}),
              "There is a red car, a yellow sun and two green trees.");
    EXPECT_EQ(dl::scene_describe({{"person", "orange", {}}, {"person", "orange", {}}}), "There are two orange people.");
}

TEST(Scenes, GeneratesTwoHundredQuickly) {
    const auto t0 = std::chrono::steady_clock::now();
    write_set("scenes-speed", 200, 1);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("200 scenes (448x336, PNG + jsonl) in %.2f s\n", s);
    EXPECT_LT(s, 30.0);  // ~2 s on one core here; loose for loaded CI machines
}

TEST(Scenes, CliWritesTheContract) {
    const std::string dir = dltest::scratch_dir("scenes-cli") + "/out";
    std::string out;
    ASSERT_EQ(dltest::run_command(cli() + " scenes --count 6 --seed 3 --out " + dir + " --size 320x240", &out), 0) << out;
    const std::vector<json> scenes = read_jsonl(dir + "/scenes.jsonl");
    ASSERT_EQ(scenes.size(), 6u);
    for (const json& s : scenes) {
        const std::string image = s["image"];
        const cv::Mat img = cv::imread(dir + "/" + image, cv::IMREAD_UNCHANGED);
        ASSERT_FALSE(img.empty()) << image;
        EXPECT_EQ(img.cols, 320);
        EXPECT_EQ(img.rows, 240);
        EXPECT_EQ(s["width"], 320);
        EXPECT_EQ(s["height"], 240);
        ASSERT_TRUE(s["objects"].is_array());
        for (const json& o : s["objects"]) {
            EXPECT_TRUE(o["class"].is_string() && o["color"].is_string());
            ASSERT_EQ(o["box"].size(), 4u);
            for (const json& v : o["box"]) EXPECT_TRUE(v.is_number_integer());
            EXPECT_LE(o["box"][2].get<int>(), 320);
            EXPECT_LE(o["box"][3].get<int>(), 240);
        }
    }
    for (const json& q : read_jsonl(dir + "/questions.jsonl")) {
        for (const char* key : {"question_id", "image", "text", "label", "category"}) EXPECT_TRUE(q.contains(key)) << key;
        EXPECT_TRUE(fs::exists(dir + "/" + q["image"].get<std::string>()));
    }
    for (const json& q : read_jsonl(dir + "/questions_other.jsonl"))
        for (const char* key : {"question_id", "image", "text", "answer", "kind"}) EXPECT_TRUE(q.contains(key)) << key;

    EXPECT_NE(expect_error("scenes --count 6 --seed 3 --out " + dir).find("--overwrite"), std::string::npos);
    ASSERT_EQ(dltest::run_command(cli() + " scenes --count 2 --seed 3 --out " + dir + " --size 320x240 --overwrite", &out),
              0)
        << out;
    EXPECT_FALSE(fs::exists(dir + "/scene_000005.png"));  // earlier outputs were replaced, not mixed in
    EXPECT_EQ(read_jsonl(dir + "/scenes.jsonl")[1], scenes[1]);
    const std::string fresh = dltest::scratch_dir("scenes-cli-bad") + "/x";
    EXPECT_NE(expect_error("scenes --count 2 --out " + fresh + " --size abc").find("--size"), std::string::npos);
    EXPECT_NE(expect_error("scenes --count 2 --out " + fresh + " --size 50x50").find("--size"), std::string::npos);
    EXPECT_NE(expect_error("scenes --count 2 --out " + fresh + " --size 448x336x2").find("--size"), std::string::npos);
    EXPECT_NE(expect_error("scenes --count 0 --out " + fresh).find("--count"), std::string::npos);
    EXPECT_NE(expect_error("scenes --count -3 --out " + fresh).find("--count"), std::string::npos);
    EXPECT_FALSE(fs::exists(fresh));
}

}  // namespace
