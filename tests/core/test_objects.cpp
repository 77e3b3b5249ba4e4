// Object vocabularies (core/scenes/objects.h): the scene world's words, CHAIR synonyms files (and their
// corrupt forms), set scores by hand, and a scene's ground truth found beside its picture.
#include <gtest/gtest.h>

#include "core/common.h"
#include "core/scenes/objects.h"
#include "test_util.h"

namespace {

using dl::ObjectVocabulary;
using Set = std::set<std::string>;

TEST(Objects, SceneWorldDescribeSentences) {
    const ObjectVocabulary& v = ObjectVocabulary::scenes();
    // The generator's own wording (core/scenes/scenes.cpp scene_describe), plurals and irregulars.
    EXPECT_EQ(v.objects_in("There is a pink bird, a white sun, a black sun and a brown bird."),
              (Set{"bird", "sun"}));
    EXPECT_EQ(v.objects_in("There are two red houses, three people, two fish and an orange umbrella."),
              (Set{"house", "person", "fish", "umbrella"}));
    EXPECT_EQ(v.objects_in("Puppies and kittens near the trees; a mug, clouds, stars, balls, flowers, boats, cars."),
              (Set{"dog", "cat", "tree", "cup", "cloud", "star", "ball", "flower", "boat", "car"}));
    // Words of other classes are not scene objects (COCO's would be).
    EXPECT_TRUE(v.objects_in("A giraffe eats pizza at the dining table.").empty());
    EXPECT_EQ(ObjectVocabulary::coco().objects_in("A giraffe eats pizza at the dining table."),
              (Set{"giraffe", "pizza", "dining table"}));
    EXPECT_EQ(v.canonical_names().size(), 16u);
    EXPECT_EQ(&ObjectVocabulary::builtin("scenes"), &v);
    EXPECT_THROW(ObjectVocabulary::builtin("imagenet"), dl::Error);
}

TEST(Objects, SetScoresByHand) {
    // predicted {car, dog, sun}, actual {car, sun, tree, cup}: TP 2, P 2/3, R 2/4, F1 2*2/(3+4) = 4/7
    dl::SetScore s = dl::score_sets({"car", "dog", "sun"}, {"car", "sun", "tree", "cup"});
    EXPECT_EQ(s.true_positives, 2);
    EXPECT_DOUBLE_EQ(s.precision(), 2.0 / 3.0);
    EXPECT_DOUBLE_EQ(s.recall(), 0.5);
    EXPECT_DOUBLE_EQ(s.f1(), 4.0 / 7.0);
    EXPECT_DOUBLE_EQ(dl::score_sets({}, {}).f1(), 1.0);
    EXPECT_DOUBLE_EQ(dl::score_sets({}, {"car"}).f1(), 0.0);
    EXPECT_DOUBLE_EQ(dl::score_sets({}, {"car"}).precision(), 1.0);
    EXPECT_DOUBLE_EQ(dl::score_sets({"car"}, {}).f1(), 0.0);
}

TEST(Objects, SynonymsFileAndItsCorruptForms) {
    const std::string dir = dltest::scratch_dir("objects_synonyms");
    const std::string good = dir + "/synonyms.txt";
    dltest::write_file(good, "# CHAIR-style synonyms\nperson, girl, boy, man\r\n\ntraffic light, stoplight\nhot dog\n");
    ObjectVocabulary v = ObjectVocabulary::from_synonyms_file(good);
    EXPECT_EQ(v.objects_in("Two girls and a man wait at the traffic lights eating hot dogs."),
              (Set{"person", "traffic light", "hot dog"}));
    EXPECT_EQ(v.canonical("stoplights"), "traffic light");
    EXPECT_EQ(v.parse_tags("Boys; stoplight, grass"), (Set{"person", "traffic light", "grass"}));

    auto error_of = [&](const std::string& name, const std::string& bytes) {
        const std::string path = dir + "/" + name;
        dltest::write_file(path, bytes);
        try {
            ObjectVocabulary::from_synonyms_file(path);
        } catch (const dl::Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(error_of("punct.txt", "person\n , ;; \n").find("punct.txt:2"), std::string::npos);
    EXPECT_NE(error_of("bar.txt", "person|man\n").find("bar.txt:1"), std::string::npos);
    EXPECT_NE(error_of("empty.txt", "# nothing\n\n").find("no objects"), std::string::npos);
    EXPECT_NE(error_of("binary.txt", std::string("\0\x01\x02", 3)).find("binary.txt"), std::string::npos);
    try {
        ObjectVocabulary::from_synonyms_file(dir + "/missing.txt");
        ADD_FAILURE() << "no error for a missing file";
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find("missing.txt"), std::string::npos);
    }
}

TEST(Objects, SceneTruthBesideThePicture) {
    const std::string dir = dltest::scratch_dir("objects_scene_truth");
    ASSERT_EQ(dltest::run_command(dltest::cli() + " scenes --count 3 --seed 5 --out " + dir + "/set --size 160x120"), 0);
    const std::string jsonl = dltest::read_file(dir + "/set/scenes.jsonl");
    // Expected from the file itself, read independently: the classes of line 2 in order, distinct.
    const size_t line2 = jsonl.find('\n') + 1;
    const std::string second = jsonl.substr(line2, jsonl.find('\n', line2) - line2);
    std::vector<std::string> expected;
    for (size_t p = second.find("\"class\":\""); p != std::string::npos; p = second.find("\"class\":\"", p + 1)) {
        const size_t b = p + 9;
        const std::string c = second.substr(b, second.find('"', b) - b);
        if (std::find(expected.begin(), expected.end(), c) == expected.end()) expected.push_back(c);
    }
    ASSERT_FALSE(expected.empty());
    std::vector<std::string> got;
    ASSERT_TRUE(dl::scene_truth_for_image(dir + "/set/scene_000001.png", &got));
    EXPECT_EQ(got, expected);
    EXPECT_FALSE(dl::scene_truth_for_image(dir + "/set/scene_000009.png", &got));  // not listed
    EXPECT_FALSE(dl::scene_truth_for_image(dltest::sample_image(), &got));         // no scenes.jsonl
    // Corrupt scenes.jsonl: one-line errors naming the file and line.
    dltest::write_file(dir + "/set/scenes.jsonl", "{\"image\":\"a.png\",\"objects\":[]}\n{\"image\":\n");
    try {
        dl::scene_truth_for_image(dir + "/set/scene_000001.png", &got);
        ADD_FAILURE() << "no error for a truncated line";
    } catch (const dl::Error& e) {
        EXPECT_NE(std::string(e.what()).find("scenes.jsonl:2"), std::string::npos) << e.what();
    }
    dltest::write_file(dir + "/set/scenes.jsonl", "{\"image\":\"scene_000001.png\",\"objects\":[{\"color\":\"red\"}]}\n");
    EXPECT_THROW(dl::scene_truth_for_image(dir + "/set/scene_000001.png", &got), dl::Error);
}

}  // namespace
