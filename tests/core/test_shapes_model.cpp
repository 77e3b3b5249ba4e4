// The bundled trained model (resources/models/dartlens-shapes) on held-out scenes, unpruned and
// greedy, through the public CLI (`scenes`, then `eval`): the quality bar of its model card.
// Held out: the scenes come from set seed 9001; training used set seeds 100000 and up
// (tools/shapes/train.py), and scene i of set S depends on (S, i) alone.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>

#include "test_util.h"

namespace {

using nlohmann::json;

std::map<std::string, json> rows_by_split(const std::string& results_path) {
    std::map<std::string, json> out;
    const json results = json::parse(dltest::read_file(results_path));  // named: the loop must not outlive it
    for (const json& r : results["rows"])
        if (r["method"] == "none") out[r["split"].get<std::string>()] = r;
    return out;
}

TEST(ShapesModel, MeetsItsQualityBarOnHeldOutScenes) {
    const std::string model = dltest::source_dir() + "/resources/models/dartlens-shapes";
    // Visible as SKIPPED until tools/shapes produces a model that meets the bar (its README says
    // where training stands); the bar itself is the and is not lowered to fit a model.
    if (dltest::run_command("test -f " + model + "/config.json") != 0)
        GTEST_SKIP() << "no trained model at " << model << " yet (tools/shapes/README.md)";
    const std::string dir = dltest::scratch_dir("shapes_model");
    const std::string cli = dltest::cli();
    std::string out;
    ASSERT_EQ(dltest::run_command(cli + " scenes --count 40 --seed 9001 --size 336x336 --out " + dir + "/scenes", &out), 0)
        << out;
    ASSERT_EQ(dltest::run_command(cli + " eval --task pope --questions " + dir + "/scenes/questions.jsonl -m " + model +
                                      " --method none -n 6 -t 2 --out " + dir + "/pope",
                                  &out),
              0)
        << out;
    ASSERT_EQ(dltest::run_command(cli + " eval --task scenes --questions " + dir + "/scenes/questions_other.jsonl -m " +
                                      model + " --method none -n 64 -t 2 --out " + dir + "/other",
                                  &out),
              0)
        << out;
    std::map<std::string, json> pope = rows_by_split(dir + "/pope/results.json");
    std::map<std::string, json> other = rows_by_split(dir + "/other/results.json");
    int questions = 0;
    for (const char* split : {"random", "popular", "adversarial"}) {
        ASSERT_TRUE(pope.count(split)) << split;
        const json& r = pope[split];
        questions += r["n"].get<int>();
        std::printf("POPE %-11s n=%3d accuracy %.3f F1 %.3f yes-ratio %.3f\n", split, r["n"].get<int>(),
                    r["pope_accuracy"].get<double>(), r["pope_f1_score"].get<double>(), r["pope_yes_ratio"].get<double>());
        EXPECT_GE(r["pope_accuracy"].get<double>(), 0.95) << "POPE " << split;
    }
    ASSERT_TRUE(other.count("describe") && other.count("color") && other.count("count"));
    std::printf("describe n=%d F1 %.3f (P %.3f R %.3f); color n=%d %.3f; count n=%d %.3f\n",
                other["describe"]["n"].get<int>(), other["describe"]["describe_f1"].get<double>(),
                other["describe"]["describe_precision"].get<double>(), other["describe"]["describe_recall"].get<double>(),
                other["color"]["n"].get<int>(), other["color"]["scenes_accuracy"].get<double>(),
                other["count"]["n"].get<int>(), other["count"]["scenes_accuracy"].get<double>());
    EXPECT_GE(other["describe"]["describe_f1"].get<double>(), 0.90);
    EXPECT_GE(other["color"]["scenes_accuracy"].get<double>(), 0.90);
    EXPECT_GE(other["count"]["scenes_accuracy"].get<double>(), 0.80);
    for (const char* kind : {"describe", "color", "count"}) questions += other[kind]["n"].get<int>();
    EXPECT_GE(questions, 200);
}

}  // namespace
