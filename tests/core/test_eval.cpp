// Batch evaluation (core/analysis/eval.h): POPE and scene metrics against hand computations written out
// here, LLaVA's eval_pope.py answer rule on tricky strings, and `dartlens-cli eval` / `eval-merge`
// end to end on a random-weight model: files, rows, shards merged == one run, --resume, SIGINT and
// one-line errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "core/common.h"
#include "core/analysis/eval.h"
#include "core/model/make_model.h"
#include "core/scenes/objects.h"
#include "core/scenes/scenes.h"
#include "test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using dltest::cli;

dl::EvalSample pope_sample(int index, const std::string& split, const std::string& answer, const std::string& label,
                           const std::string& method = "dart", int budget = 64) {
    dl::EvalSample s;
    s.index = index;
    s.question_id = std::to_string(index + 1);
    s.task = "pope";
    s.split = split;
    s.method = method;
    s.budget = budget;
    s.answer = answer;
    dl::eval_score(s, label, nullptr);
    return s;
}

const dl::EvalRow& find_row(const std::vector<dl::EvalRow>& rows, const std::string& split, const std::string& method,
                            int budget) {
    for (const dl::EvalRow& r : rows)
        if (r.split == split && r.method == method && r.budget == budget) return r;
    throw std::runtime_error("no row " + split + "/" + method + "/" + std::to_string(budget));
}

TEST(Eval, PopeParserFollowsLlavaRule) {
    // eval_pope.py: text.split('.')[0], remove ',', split(' '), 'No'/'not'/'no' among the words -> no.
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"No", "no"},
        {"no.", "no"},
        {"Yes.", "yes"},
        {"No, there is not.", "no"},
        {"There is no cat.", "no"},
        {"I see a cat. No other.", "yes"},     // only the first sentence counts
        {"Yes. No.", "yes"},
        {"Not really", "yes"},                  // 'Not' is not in the list
        {"NO", "yes"},                          // neither is 'NO'
        {"Absolutely not!", "yes"},             // 'not!' is not 'not'
        {"There is not a cat in the image.", "no"},
        {"Yes, no", "no"},                      // the comma goes, 'no' stays a word
        {"no,thing", "yes"},                    // ... and here it glues 'nothing'
        {"There is no\ncat", "yes"},            // split(' ') does not split at a newline
        {"  no", "no"},                         // '', '', 'no'
        {"No.There is a cat", "no"},
        {"I don't think so", "yes"},
        {"", "yes"},
        {".no", "yes"},                         // nothing before the first '.'
    };
    for (const auto& [text, expected] : cases) EXPECT_EQ(dl::pope_parse_answer(text), expected) << "'" << text << "'";
}

TEST(Eval, PopeMetricsMatchHandComputation) {
    std::vector<dl::EvalSample> s = {
        pope_sample(0, "random", "Yes.", "yes"),                               // TP
        pope_sample(1, "random", "No, there is not.", "no"),                   // TN
        pope_sample(2, "random", "There is no cat.", "yes"),                   // FN
        pope_sample(3, "random", "I see a cat. No other.", "yes"),             // TP (first sentence: yes)
        pope_sample(4, "random", "Yes, there is a dog in the image.", "no"),   // FP
        pope_sample(5, "adversarial", "No", "no"),                             // TN
        pope_sample(6, "adversarial", "Not at all.", "no"),                    // FP ('Not' -> yes)
        pope_sample(7, "adversarial", "yes", "yes"),                           // TP
        pope_sample(8, "adversarial", "There is a cat, not a dog.", "no"),     // TN
        pope_sample(9, "adversarial", "NO.", "yes"),                           // TP ('NO' -> yes)
    };
    // A second budget where the model always says no: nothing predicted yes.
    for (int i = 0; i < 4; ++i) s.push_back(pope_sample(i, "random", "No.", i < 3 ? "yes" : "no", "dart", 128));
    const std::vector<dl::EvalRow> rows = dl::eval_metrics(s);
    // dart/64: all, adversarial, random; dart/128: all, random.
    ASSERT_EQ(rows.size(), 5u);
    EXPECT_EQ(rows[0].split, "all");
    EXPECT_EQ(rows[0].budget, 64);
    EXPECT_EQ(rows[1].split, "adversarial");
    EXPECT_EQ(rows[2].split, "random");
    EXPECT_EQ(rows[3].budget, 128);

    // all: TP = 4 (#0,#3,#7,#9), FP = 2 (#4,#6), TN = 3 (#1,#5,#8), FN = 1 (#2).
    const dl::EvalRow& all = find_row(rows, "all", "dart", 64);
    EXPECT_EQ(all.n, 10);
    EXPECT_DOUBLE_EQ(all.metric("pope_accuracy"), 7.0 / 10);   // (4+3)/10
    EXPECT_DOUBLE_EQ(all.metric("pope_precision"), 2.0 / 3);   // 4/6
    EXPECT_DOUBLE_EQ(all.metric("pope_recall"), 4.0 / 5);      // 4/5
    EXPECT_NEAR(all.metric("pope_f1_score"), 8.0 / 11, 1e-12);  // 2(2/3)(4/5)/(2/3+4/5) = (16/15)/(22/15)
    EXPECT_DOUBLE_EQ(all.metric("pope_yes_ratio"), 3.0 / 5);   // 6/10
    // random (#0..#4): TP 2, FP 1, TN 1, FN 1.
    const dl::EvalRow& rnd = find_row(rows, "random", "dart", 64);
    EXPECT_EQ(rnd.n, 5);
    EXPECT_DOUBLE_EQ(rnd.metric("pope_accuracy"), 3.0 / 5);
    EXPECT_DOUBLE_EQ(rnd.metric("pope_precision"), 2.0 / 3);
    EXPECT_DOUBLE_EQ(rnd.metric("pope_recall"), 2.0 / 3);
    EXPECT_NEAR(rnd.metric("pope_f1_score"), 2.0 / 3, 1e-12);
    EXPECT_DOUBLE_EQ(rnd.metric("pope_yes_ratio"), 3.0 / 5);
    // adversarial (#5..#9): TP 2, FP 1, TN 2, FN 0.
    const dl::EvalRow& adv = find_row(rows, "adversarial", "dart", 64);
    EXPECT_DOUBLE_EQ(adv.metric("pope_accuracy"), 4.0 / 5);
    EXPECT_DOUBLE_EQ(adv.metric("pope_precision"), 2.0 / 3);
    EXPECT_DOUBLE_EQ(adv.metric("pope_recall"), 1.0);
    EXPECT_NEAR(adv.metric("pope_f1_score"), 4.0 / 5, 1e-12);  // 2(2/3)(1)/(5/3)
    EXPECT_DOUBLE_EQ(adv.metric("pope_yes_ratio"), 3.0 / 5);
    // Always "no": TP = FP = 0, precision defined as 0 (eval_pope.py would divide by zero), F1 0.
    const dl::EvalRow& never = find_row(rows, "all", "dart", 128);
    EXPECT_DOUBLE_EQ(never.metric("pope_accuracy"), 1.0 / 4);
    EXPECT_DOUBLE_EQ(never.metric("pope_precision"), 0.0);
    EXPECT_DOUBLE_EQ(never.metric("pope_recall"), 0.0);
    EXPECT_DOUBLE_EQ(never.metric("pope_f1_score"), 0.0);
    EXPECT_DOUBLE_EQ(never.metric("pope_yes_ratio"), 0.0);

    // Sample order does not change the rows.
    std::vector<dl::EvalSample> reversed(s.rbegin(), s.rend());
    const std::vector<dl::EvalRow> again = dl::eval_metrics(reversed);
    ASSERT_EQ(again.size(), rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
        EXPECT_EQ(again[i].split, rows[i].split);
        EXPECT_EQ(again[i].metrics, rows[i].metrics);
    }

    // Files without categories: one "all" row, not two.
    const std::vector<dl::EvalRow> plain = dl::eval_metrics({pope_sample(0, "all", "Yes", "yes"), pope_sample(1, "all", "no", "yes")});
    ASSERT_EQ(plain.size(), 1u);
    EXPECT_EQ(plain[0].n, 2);
    EXPECT_DOUBLE_EQ(plain[0].metric("pope_accuracy"), 0.5);

    // Samples survive their JSON line.
    const dl::EvalSample back = dl::eval_sample_from_json(dl::eval_sample_to_json(s[3]), "test");
    EXPECT_EQ(back.answer, s[3].answer);
    EXPECT_EQ(back.pred, "yes");
    EXPECT_EQ(back.label, "yes");
    EXPECT_EQ(back.question_id, "4");
    EXPECT_THROW(dl::eval_sample_from_json("{\"index\": 1}", "x.jsonl:3"), dl::Error);
}

// A sample of `task` scored with the scene vocabulary.
dl::EvalSample scored_sample(const std::string& task, int index, const std::string& split, const std::string& method,
                             int budget, const std::string& answer, const std::string& truth) {
    dl::EvalSample s;
    s.index = index;
    s.question_id = std::to_string(index);
    s.task = task;
    s.split = split;
    s.method = method;
    s.budget = budget;
    s.answer = answer;
    dl::eval_score(s, truth, &dl::ObjectVocabulary::builtin("scenes"));
    return s;
}

TEST(Eval, ScenesMetricsMatchHandComputation) {
    auto scene_sample = [&](int index, const std::string& kind, const std::string& answer, const std::string& reference) {
        return scored_sample("scenes", index, kind, "none", 576, answer, reference);
    };
    std::vector<dl::EvalSample> s = {
        // predicted {car, dog}, true {car, house}: dog hallucinated, house missed -> P = 1/2, R = 1/2, F1 = 1/2.
        scene_sample(0, "describe", "There is a red car and a brown dog.", "There is a red car and a yellow house."),
        // nothing predicted, true {cat}: P = 1 (nothing predicted), R = 0, F1 = 0.
        scene_sample(1, "describe", "I cannot tell.", "There is a white cat."),
        scene_sample(2, "count", "Two.", "2"),            // "two" -> "2": right
        scene_sample(3, "count", "2 cars", "2"),          // first word "2": right
        scene_sample(4, "count", "three", "2"),           // wrong
        scene_sample(5, "color", "Red.", "red"),          // right
        scene_sample(6, "color", "The car is red.", "red"),  // first word "the": wrong
        scene_sample(7, "position", "Left, I think", "left"),  // right
    };
    EXPECT_EQ(s[0].pred_objects, (std::vector<std::string>{"car", "dog"}));
    EXPECT_EQ(s[0].label_objects, (std::vector<std::string>{"car", "house"}));
    EXPECT_EQ(s[2].pred, "2");
    EXPECT_EQ(s[6].pred, "the");
    const std::vector<dl::EvalRow> rows = dl::eval_metrics(s);
    ASSERT_EQ(rows.size(), 4u);  // color, count, describe, position; no "all" row for scenes
    const dl::EvalRow& describe = find_row(rows, "describe", "none", 576);
    EXPECT_EQ(describe.n, 2);
    EXPECT_DOUBLE_EQ(describe.metric("describe_precision"), 3.0 / 4);  // (1/2 + 1)/2
    EXPECT_DOUBLE_EQ(describe.metric("describe_recall"), 1.0 / 4);     // (1/2 + 0)/2
    EXPECT_DOUBLE_EQ(describe.metric("describe_f1"), 1.0 / 4);         // (1/2 + 0)/2
    EXPECT_THROW(describe.metric("scenes_accuracy"), dl::Error);
    EXPECT_DOUBLE_EQ(find_row(rows, "count", "none", 576).metric("scenes_accuracy"), 2.0 / 3);
    EXPECT_DOUBLE_EQ(find_row(rows, "color", "none", 576).metric("scenes_accuracy"), 1.0 / 2);
    EXPECT_DOUBLE_EQ(find_row(rows, "position", "none", 576).metric("scenes_accuracy"), 1.0);

    const dl::EvalSample back = dl::eval_sample_from_json(dl::eval_sample_to_json(s[0]), "test");
    EXPECT_EQ(back.pred_objects, s[0].pred_objects);
    EXPECT_EQ(back.label_objects, s[0].label_objects);
    EXPECT_EQ(back.reference, "There is a red car and a yellow house.");
}

TEST(Eval, ChairMetricsMatchHandComputation) {
    auto chair_sample = [&](int index, const std::string& caption, const std::string& truth) {
        return scored_sample("chair", index, "all", "fastv", 64, caption, truth);
    };
    std::vector<dl::EvalSample> s = {
        // mentions: car, dog, car (a repeat counts again); truth {car, house}: one hallucinated mention.
        chair_sample(0, "A red car next to a dog. The car is parked.", "car|house"),
        // mentions: cats, kitten -> cat, cat; truth {cat}: none hallucinated.
        chair_sample(1, "Two cats and a kitten.", "cat"),
        // mentions: puppies -> dog, people -> person; truth {tree}: both hallucinated.
        chair_sample(2, "Puppies and people.", "tree"),
        // no mention at all; truth {sun, cloud}.
        chair_sample(3, "A nice day.", "sun|cloud"),
    };
    EXPECT_EQ(s[0].pred_objects, (std::vector<std::string>{"car", "dog", "car"}));
    EXPECT_EQ(s[0].label_objects, (std::vector<std::string>{"car", "house"}));
    EXPECT_EQ(s[2].pred_objects, (std::vector<std::string>{"dog", "person"}));
    EXPECT_EQ(s[3].label_objects, (std::vector<std::string>{"cloud", "sun"}));
    const std::vector<dl::EvalRow> rows = dl::eval_metrics(s);
    ASSERT_EQ(rows.size(), 1u);
    const dl::EvalRow& r = rows[0];
    EXPECT_EQ(r.n, 4);
    // CHAIR_s: captions 0 and 2 hallucinate -> 2/4. CHAIR_i: mentions 3 + 2 + 2 + 0 = 7, hallucinated
    // 1 + 0 + 2 = 3 -> 3/7. Recall: annotated 2 + 1 + 1 + 2 = 6, mentioned car, cat -> 2/6.
    EXPECT_EQ(s[1].pred_objects, (std::vector<std::string>{"cat", "cat"}));
    EXPECT_DOUBLE_EQ(r.metric("chair_s"), 0.5);
    EXPECT_DOUBLE_EQ(r.metric("chair_i"), 3.0 / 7);
    EXPECT_DOUBLE_EQ(r.metric("chair_recall"), 2.0 / 6);
    const dl::EvalSample back = dl::eval_sample_from_json(dl::eval_sample_to_json(s[0]), "test");
    EXPECT_EQ(back.pred_objects, s[0].pred_objects);
    EXPECT_EQ(back.label_objects, s[0].label_objects);
    EXPECT_THROW(dl::eval_sample_from_json(R"({"index":0,"question_id":1,"task":"chair","split":"all","method":"none",)"
                                           R"("budget":16,"answer":"x","pred":"car","label":"car","kept_count":16})",
                                           "t.jsonl:1"),
                 dl::Error);
}

TEST(Eval, ShardParsing) {
    int i = 0, n = 0;
    dl::eval_parse_shard("2/5", &i, &n);
    EXPECT_EQ(i, 2);
    EXPECT_EQ(n, 5);
    for (const char* bad : {"0/3", "4/3", "a/b", "1/0", "3", "-1/3", "1/3/4", ""})
        EXPECT_THROW(dl::eval_parse_shard(bad, &i, &n), dl::Error) << bad;
}

// --- end to end ------------------------------------------------------------------------------

using dltest::read_jsonl;

std::vector<std::string> read_lines(const std::string& path) {
    std::vector<std::string> out;
    std::istringstream in(dltest::read_file(path));
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) out.push_back(line);
    return out;
}

// The tiny preset (56x56 pictures, 4x4 = 16 image tokens) and a small scene world, made once.
struct World {
    std::string model, scenes, questions;  // questions: 6 POPE questions, 2 per category
};

const World& world() {
    static World w;
    if (w.model.empty()) {
        const std::string root = dltest::scratch_dir("eval-world");
        w.model = root + "/tiny";
        w.scenes = root + "/scenes";
        // In process: what `make-model --preset tiny --seed 3` and `scenes --count 3 --seed 1 --size
        // 112x112` write, without two more process start-ups.
        dl::make_model("tiny", w.model, 3);
        dl::ScenesArgs sa;
        sa.count = 3, sa.seed = 1, sa.out_dir = w.scenes, sa.width = 112, sa.height = 112;
        dl::scenes_write(sa);
        // Two questions of each category: scene 0's first (a yes) and scene 1's second (a no).
        std::map<std::pair<std::string, int>, int> seen;  // (category, scene) -> questions so far
        std::string picked;
        for (const json& q : read_jsonl(w.scenes + "/questions.jsonl")) {
            const int scene = std::stoi(q["image"].get<std::string>().substr(6, 6));
            const int k = seen[{q["category"].get<std::string>(), scene}]++;
            if ((scene == 0 && k == 0) || (scene == 1 && k == 1)) picked += q.dump() + "\n";
        }
        w.questions = root + "/pope6.jsonl";
        dltest::write_file(w.questions, picked);
    }
    return w;
}

std::string eval_cmd(const std::string& out_dir, const std::string& extra = "") {
    const World& w = world();
    return cli() + " eval --task pope --questions " + w.questions + " --images " + w.scenes + " -m " + w.model +
           " --method none,dart,fastv,random --keep 8 -n 3 -t 1 --out " + out_dir + " " + extra;
}

const char* const kFiles[] = {"samples_pope_none_16.jsonl", "samples_pope_dart_8.jsonl", "samples_pope_fastv_8.jsonl",
                              "samples_pope_random_8.jsonl"};

// A sample or a results row without its timings, for comparing runs.
json without_timings(json j) {
    for (auto it = j.begin(); it != j.end();) {
        const std::string key = it.key();
        if (key.size() > 3 && key.compare(key.size() - 3, 3, "_ms") == 0) it = j.erase(it);
        else ++it;
    }
    return j;
}

void expect_same_outputs(const std::string& a, const std::string& b) {
    for (const char* name : kFiles) {
        const std::vector<json> x = read_jsonl(a + "/" + name), y = read_jsonl(b + "/" + name);
        ASSERT_EQ(x.size(), y.size()) << name;
        for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(without_timings(x[i]), without_timings(y[i])) << name << " " << i;
    }
    const json rx = json::parse(dltest::read_file(a + "/results.json"));
    const json ry = json::parse(dltest::read_file(b + "/results.json"));
    EXPECT_EQ(rx["config"], ry["config"]);
    ASSERT_EQ(rx["rows"].size(), ry["rows"].size());
    for (size_t i = 0; i < rx["rows"].size(); ++i)
        EXPECT_EQ(without_timings(rx["rows"][i]), without_timings(ry["rows"][i])) << i;
}

const std::string& full_run() {
    static std::string dir;
    if (dir.empty()) {
        dir = dltest::scratch_dir("eval-full") + "/out";
        std::string out;
        EXPECT_EQ(dltest::run_command(eval_cmd(dir), &out), 0) << out;
    }
    return dir;
}

TEST(EvalCli, WritesSamplesAndResults) {
    const std::string dir = full_run();
    for (const char* name : kFiles) {
        ASSERT_TRUE(fs::exists(dir + "/" + name)) << name;
        const std::vector<json> lines = read_jsonl(dir + "/" + name);
        ASSERT_EQ(lines.size(), 6u) << name;
        for (size_t i = 0; i < lines.size(); ++i) {
            const json& l = lines[i];
            EXPECT_EQ(l["index"], int(i)) << name;  // question-file order
            for (const char* key : {"question_id", "split", "method", "budget", "answer", "pred", "label", "kept_count",
                                    "prefill_ms", "decode_ms", "total_ms"})
                EXPECT_TRUE(l.contains(key)) << name << " " << key;
            EXPECT_TRUE(l["pred"] == "yes" || l["pred"] == "no");
            EXPECT_EQ(l["pred"], dl::pope_parse_answer(l["answer"].get<std::string>()));
        }
    }
    const std::vector<json> none = read_jsonl(dir + "/samples_pope_none_16.jsonl");
    EXPECT_EQ(none[0]["budget"], 16);  // method none: the full image-token count
    EXPECT_EQ(none[0]["kept_count"], 16);
    EXPECT_EQ(read_jsonl(dir + "/samples_pope_fastv_8.jsonl")[0]["kept_count"], 8);
    // The labels are the question file's.
    const std::vector<json> questions = read_jsonl(world().questions);
    for (size_t i = 0; i < questions.size(); ++i) {
        EXPECT_EQ(none[i]["question_id"], questions[i]["question_id"]);
        EXPECT_EQ(none[i]["label"], questions[i]["label"]);
        EXPECT_EQ(none[i]["split"], questions[i]["category"]);
    }

    const json results = json::parse(dltest::read_file(dir + "/results.json"));
    ASSERT_EQ(results["rows"].size(), 16u);  // 4 methods x (all + 3 categories)
    for (const json& row : results["rows"]) {
        EXPECT_EQ(row["n"], row["split"] == "all" ? 6 : 2);
        for (const char* key : {"task", "split", "method", "budget", "n", "pope_accuracy", "pope_precision",
                                "pope_recall", "pope_f1_score", "pope_yes_ratio", "mean_total_ms"})
            EXPECT_TRUE(row.contains(key)) << key;
        // Accuracy and yes ratio recounted here from the samples' pred/label.
        const std::string file = "samples_pope_" + row["method"].get<std::string>() + "_" +
                                 std::to_string(row["budget"].get<int>()) + ".jsonl";
        int n = 0, right = 0, yes = 0;
        for (const json& s : read_jsonl(dir + "/" + file)) {
            if (row["split"] != "all" && s["split"] != row["split"]) continue;
            ++n, right += s["pred"] == s["label"], yes += s["pred"] == "yes";
        }
        EXPECT_EQ(row["n"], n);
        EXPECT_DOUBLE_EQ(row["pope_accuracy"].get<double>(), double(right) / n);
        EXPECT_DOUBLE_EQ(row["pope_yes_ratio"].get<double>(), double(yes) / n);
    }
    EXPECT_EQ(results["rows"][0]["method"], "none");
    EXPECT_EQ(results["rows"][0]["split"], "all");
    const std::vector<std::string> csv = read_lines(dir + "/results.csv");
    EXPECT_EQ(csv.size(), 17u);
    EXPECT_EQ(csv[0].rfind("task,split,method,budget,n,pope_accuracy", 0), 0u) << csv[0];
    const std::vector<std::string> md = read_lines(dir + "/results.md");
    EXPECT_EQ(md.size(), 18u);
    EXPECT_EQ(md[0].rfind("| task | split |", 0), 0u) << md[0];

    // The same directory again without --resume: refused.
    EXPECT_NE(dltest::expect_cli_error(eval_cmd(dir).substr(cli().size() + 1)).find("--resume"), std::string::npos);
}

TEST(EvalCli, ShardsMergeToTheUnshardedRun) {
    const std::string root = dltest::scratch_dir("eval-shards");
    std::string out;
    ASSERT_EQ(dltest::run_command(eval_cmd(root + "/s1", "--shard 1/2"), &out), 0) << out;
    ASSERT_EQ(dltest::run_command(eval_cmd(root + "/s2", "--shard 2/2"), &out), 0) << out;
    // Shard 1/2 holds the even file indices.
    for (const json& s : read_jsonl(root + "/s1/samples_pope_dart_8.jsonl")) EXPECT_EQ(s["index"].get<int>() % 2, 0);
    EXPECT_EQ(read_jsonl(root + "/s2/samples_pope_dart_8.jsonl").size(), 3u);
    ASSERT_EQ(dltest::run_command(cli() + " eval-merge " + root + "/s2 " + root + "/s1 --out " + root + "/merged", &out), 0)
        << out;
    expect_same_outputs(full_run(), root + "/merged");
    // One shard alone merges, with a warning that questions are missing.
    ASSERT_EQ(dltest::run_command(cli() + " eval-merge " + root + "/s1 --out " + root + "/half", &out), 0) << out;
    EXPECT_NE(out.find("has 3 of 6 questions"), std::string::npos) << out;
    EXPECT_NE(dltest::expect_cli_error("eval-merge " + root + "/s1 --out " + root + "/s1").find("inputs"),
              std::string::npos);
}

TEST(EvalCli, ResumeAnswersOnlyWhatIsMissing) {
    const std::string dir = dltest::scratch_dir("eval-resume") + "/out";
    fs::copy(full_run(), dir, fs::copy_options::recursive);
    // dart loses its last two answers; fastv's last line is cut half-way, as by a kill.
    const std::vector<std::string> dart = read_lines(dir + "/samples_pope_dart_8.jsonl");
    dltest::write_file(dir + "/samples_pope_dart_8.jsonl", dart[0] + "\n" + dart[1] + "\n" + dart[2] + "\n" + dart[3] + "\n");
    const std::vector<std::string> fastv = read_lines(dir + "/samples_pope_fastv_8.jsonl");
    std::string cut;
    for (size_t i = 0; i + 1 < fastv.size(); ++i) cut += fastv[i] + "\n";
    cut += fastv.back().substr(0, fastv.back().size() / 2);
    dltest::write_file(dir + "/samples_pope_fastv_8.jsonl", cut);
    const std::string before_none = dltest::read_file(dir + "/samples_pope_none_16.jsonl");

    std::string out;
    ASSERT_EQ(dltest::run_command(eval_cmd(dir, "--resume"), &out), 0) << out;
    EXPECT_NE(out.find("3 answers to compute, 21 already in"), std::string::npos) << out;
    // Untouched answers were not recomputed: their lines (timings included) are byte-identical.
    EXPECT_EQ(dltest::read_file(dir + "/samples_pope_none_16.jsonl"), before_none);
    const std::vector<std::string> dart_after = read_lines(dir + "/samples_pope_dart_8.jsonl");
    ASSERT_EQ(dart_after.size(), 6u);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(dart_after[i], dart[i]);
    expect_same_outputs(full_run(), dir);

    // Nothing left: a second resume computes nothing.
    ASSERT_EQ(dltest::run_command(eval_cmd(dir, "--resume"), &out), 0) << out;
    EXPECT_NE(out.find("0 answers to compute, 24 already in"), std::string::npos) << out;
}

TEST(EvalCli, SigintStopsAfterTheQuestionInFlight) {
    const World& w = world();
    const std::string dir = dltest::scratch_dir("eval-sigint") + "/out";
    // Every question of the set five times over, long answers: seconds of work, far more than the
    // time it takes to send the signal once the first answers are on disk.
    std::string many;
    const std::vector<json> set = read_jsonl(w.scenes + "/questions.jsonl");
    for (int copy = 0; copy < 5; ++copy)
        for (json q : set) {
            q["question_id"] = q["question_id"].get<int>() + 1000 * copy;
            many += q.dump() + "\n";
        }
    const std::string questions = fs::path(dir).parent_path().string() + "/many.jsonl";
    dltest::write_file(questions, many);
    const std::string cmd = cli() + " eval --task pope --questions " + questions + " --images " + w.scenes + " -m " +
                            w.model + " --method none,dart --keep 8 -n 48 -t 1 --out " + dir;
    const std::string script = "(" + cmd + " >/dev/null 2>&1 & pid=$!; i=0; while [ ! -s " + dir +
                               "/samples_pope_dart_8.jsonl ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; "
                               "kill -INT $pid; wait $pid; echo rc=$?)";
    std::string out;
    dltest::run_command(script, &out);
    EXPECT_NE(out.find("rc=130"), std::string::npos) << out;
    ASSERT_TRUE(fs::exists(dir + "/results.json"));
    const size_t total = 5 * set.size();
    const size_t answered = read_jsonl(dir + "/samples_pope_none_16.jsonl").size();
    EXPECT_GE(answered, 1u);
    EXPECT_LT(answered, total);
    const json results = json::parse(dltest::read_file(dir + "/results.json"));
    EXPECT_EQ(results["rows"][0]["n"], int(answered));
    // Every written line is whole.
    for (const char* name : {"samples_pope_none_16.jsonl", "samples_pope_dart_8.jsonl"})
        for (const std::string& line : read_lines(dir + "/" + name)) EXPECT_NO_THROW(json::parse(line)) << line;
}

TEST(EvalCli, ScenesTaskScoresShortAnswersAndDescriptions) {
    const World& w = world();
    const std::string dir = dltest::scratch_dir("eval-scenes") + "/out";
    std::string out;
    ASSERT_EQ(dltest::run_command(cli() + " eval --task scenes --questions " + w.scenes + "/questions_other.jsonl -m " +
                                      w.model + " --method none -n 3 -t 1 --out " + dir,
                                  &out),
              0)
        << out;
    const json results = json::parse(dltest::read_file(dir + "/results.json"));
    std::set<std::string> splits;
    for (const json& row : results["rows"]) {
        splits.insert(row["split"].get<std::string>());
        if (row["split"] == "describe") {
            EXPECT_TRUE(row.contains("describe_precision") && row.contains("describe_recall") && row.contains("describe_f1"));
        } else {
            EXPECT_TRUE(row.contains("scenes_accuracy")) << row.dump();
        }
    }
    EXPECT_TRUE(splits.count("describe") && splits.count("color") && splits.count("count")) << out;
    for (const json& s : read_jsonl(dir + "/samples_scenes_none_16.jsonl"))
        if (s["split"] == "describe") EXPECT_TRUE(s["label"].is_array() && !s["label"].empty()) << s.dump();
}

// CHAIR end to end on the scene world's own pair: the set's instances.json and the shipped
// synonyms file; labels are the scenes' classes, recomputed here from scenes.jsonl.
TEST(EvalCli, ChairTaskCaptionsEveryAnnotatedImage) {
    const World& w = world();
    const std::string dir = dltest::scratch_dir("eval-chair") + "/out";
    const std::string synonyms = dltest::source_dir() + "/resources/chair/scenes_synonyms.txt";
    std::string out;
    ASSERT_EQ(dltest::run_command(cli() + " eval --task chair --annotations " + w.scenes + "/instances.json --images " +
                                      w.scenes + " --synonyms " + synonyms + " -m " + w.model +
                                      " --method none,dart --keep 8 -n 4 -t 1 --out " + dir,
                                  &out),
              0)
        << out;
    const std::vector<json> scenes = read_jsonl(w.scenes + "/scenes.jsonl");
    for (const char* file : {"samples_chair_none_16.jsonl", "samples_chair_dart_8.jsonl"}) {
        const std::vector<json> samples = read_jsonl(dir + "/" + file);
        ASSERT_EQ(samples.size(), scenes.size()) << file;
        for (size_t i = 0; i < samples.size(); ++i) {
            std::set<std::string> truth;
            for (const json& o : scenes[i]["objects"]) truth.insert(o["class"].get<std::string>());
            EXPECT_EQ(samples[i]["label"].get<std::vector<std::string>>(),
                      std::vector<std::string>(truth.begin(), truth.end()))
                << file << " " << i;
            EXPECT_EQ(samples[i]["question"], "Please describe this image in detail.");
            EXPECT_EQ(samples[i]["question_id"], int(i) + 1);
        }
    }
    const json results = json::parse(dltest::read_file(dir + "/results.json"));
    ASSERT_EQ(results["rows"].size(), 2u);
    for (const json& row : results["rows"]) {
        EXPECT_EQ(row["task"], "chair");
        for (const char* m : {"chair_s", "chair_i", "chair_recall"}) {
            ASSERT_TRUE(row.contains(m)) << row.dump();
            EXPECT_GE(row[m].get<double>(), 0.0);
            EXPECT_LE(row[m].get<double>(), 1.0);
        }
    }
    // Without a synonyms file, or with a broken annotations file, one line names what is missing.
    EXPECT_NE(dltest::run_command(cli() + " eval --task chair --annotations " + w.scenes + "/instances.json --images " +
                                      w.scenes + " -m " + w.model + " --method none --out " + dir + "2",
                                  &out),
              0);
    EXPECT_NE(out.find("--synonyms"), std::string::npos) << out;
    const std::string bad = dltest::scratch_dir("eval-chair") + "/bad.json";
    dltest::write_file(bad, R"({"images": [{"id": 1, "file_name": "scene_000000.png"}], "annotations": [{"image_id": 1,)"
                            R"( "category_id": 99}], "categories": []})");
    EXPECT_NE(dltest::run_command(cli() + " eval --task chair --annotations " + bad + " --images " + w.scenes +
                                      " --synonyms " + synonyms + " -m " + w.model + " --method none --out " + dir + "3",
                                  &out),
              0);
    EXPECT_NE(out.find("bad.json: annotations[0]: no category with id 99"), std::string::npos) << out;
}

// The message of the dl::Error that run_eval throws, checked to be one line.
std::string eval_error(const dl::EvalArgs& args) {
    try {
        dl::run_eval(args);
    } catch (const dl::Error& e) {
        const std::string message = e.what();
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        return message;
    }
    ADD_FAILURE() << "no error for --questions " << args.questions;
    return "";
}

TEST(EvalCli, BadInputsGiveOneLineErrors) {
    const World& w = world();
    const std::string tmp = dltest::scratch_dir("eval-bad");
    auto write = [&](const std::string& name, const std::string& text) {
        dltest::write_file(tmp + "/" + name, text);
        return tmp + "/" + name;
    };
    const std::string good = dltest::read_file(w.questions);
    const std::string first = good.substr(0, good.find('\n') + 1);

    // Through the binary: exit status 1 and one line on stderr.
    const std::string base = "eval -m " + w.model + " --images " + w.scenes + " --method none --out " + tmp + "/out";
    std::string e = dltest::expect_cli_error(base + " --task pope --questions " +
                                             write("bad.jsonl", first + "{\"question_id\": 2,\n"));
    EXPECT_NE(e.find("bad.jsonl:2"), std::string::npos) << e;
    EXPECT_NE(e.find("JSON"), std::string::npos) << e;
    e = dltest::expect_cli_error(base + " --task pope --questions " + w.questions + " --shard 0/3");
    EXPECT_NE(e.find("--shard"), std::string::npos) << e;
    e = dltest::expect_cli_error("eval -m " + w.model + " --task pope --questions " + w.questions + " --images " +
                                 w.scenes + " --method none,dart --out " + tmp + "/out");
    EXPECT_NE(e.find("--keep"), std::string::npos) << e;
    e = dltest::expect_cli_error(base + " --task vqa --questions " + w.questions);
    EXPECT_NE(e.find("vqa"), std::string::npos) << e;
    e = dltest::expect_cli_error("eval-merge " + tmp + " --out " + tmp + "/merged");
    EXPECT_NE(e.find("samples"), std::string::npos) << e;

    // The rest in process (same messages: the CLI prints what() after "error: ").
    dl::EvalArgs a;
    a.task = "pope";
    a.model_dir = w.model;
    a.images = w.scenes;
    a.methods = "none";
    a.n_predict = 2;
    a.threads = 1;
    a.out_dir = tmp + "/out";
    a.questions = write("notext.jsonl", "{\"question_id\": 1, \"image\": \"scene_000000.png\", \"label\": \"yes\"}\n");
    e = eval_error(a);
    EXPECT_NE(e.find("notext.jsonl:1"), std::string::npos) << e;
    EXPECT_NE(e.find("'text'"), std::string::npos) << e;
    a.questions = write("maybe.jsonl", first + "{\"question_id\": 2, \"image\": \"scene_000000.png\", "
                                               "\"text\": \"Is there a cat?\", \"label\": \"maybe\"}\n");
    e = eval_error(a);
    EXPECT_NE(e.find("maybe.jsonl:2"), std::string::npos) << e;
    EXPECT_NE(e.find("label"), std::string::npos) << e;
    a.questions = write("noimage.jsonl", "{\"question_id\": 1, \"image\": \"scene_999999.png\", "
                                         "\"text\": \"Is there a cat?\", \"label\": \"yes\"}\n");
    e = eval_error(a);
    EXPECT_NE(e.find("noimage.jsonl:1"), std::string::npos) << e;
    EXPECT_NE(e.find("scene_999999.png"), std::string::npos) << e;
    // llava_pope_test.jsonl style: no label, and no --annotations to take it from.
    a.questions = write("nolabel.jsonl", "{\"question_id\": 1, \"image\": \"scene_000000.png\", "
                                         "\"text\": \"Is there a cat?\", \"category\": \"random\"}\n");
    e = eval_error(a);
    EXPECT_NE(e.find("nolabel.jsonl:1"), std::string::npos) << e;
    EXPECT_NE(e.find("--annotations"), std::string::npos) << e;
    a.questions = w.questions;
    for (const char* shard : {"4/3", "a/b", "1/0"}) {
        a.shard = shard;
        e = eval_error(a);
        EXPECT_NE(e.find("--shard"), std::string::npos) << e;
    }
    a.shard = "";
    a.task = "scenes";  // POPE lines have no 'kind'
    e = eval_error(a);
    EXPECT_NE(e.find(":1: missing field 'kind'"), std::string::npos) << e;
    a.task = "pope";
    a.methods = "none,fastv";
    a.ratio = "0.5";
    a.keep = "8";
    EXPECT_NE(eval_error(a).find("not both"), std::string::npos);
    a.keep = "";
    a.layer = 9;  // the tiny preset has 3 layers: refused after the model loads, before any file
    e = eval_error(a);
    EXPECT_NE(e.find("layer"), std::string::npos) << e;
    EXPECT_FALSE(fs::exists(tmp + "/out"));
}

TEST(EvalCli, AnnotationsLabelLlavaPopeTestFiles) {
    // LLaVA's llava_pope_test.jsonl has no labels; eval_pope.py pairs the i-th answer of a category
    // with the i-th line of coco_pope_<category>.json. Two categories, interleaved in the file.
    const World& w = world();
    const std::string tmp = dltest::scratch_dir("eval-annotations");
    std::string test, random_labels, popular_labels;
    std::vector<std::string> labels;
    int id = 0;
    for (const json& q : read_jsonl(w.questions)) {
        if (q["category"] == "adversarial") continue;
        json t = {{"question_id", ++id}, {"image", q["image"]}, {"text", q["text"]}, {"category", q["category"]}};
        test += t.dump() + "\n";
        (q["category"] == "random" ? random_labels : popular_labels) += json({{"label", q["label"]}}).dump() + "\n";
        labels.push_back(q["label"]);
    }
    fs::create_directories(tmp + "/coco");
    dltest::write_file(tmp + "/llava_pope_test.jsonl", test);
    dltest::write_file(tmp + "/coco/coco_pope_random.json", random_labels);
    dltest::write_file(tmp + "/coco/coco_pope_popular.json", popular_labels);
    std::string out;
    ASSERT_EQ(dltest::run_command(cli() + " eval --task pope --questions " + tmp + "/llava_pope_test.jsonl --images " +
                                      w.scenes + " --annotations " + tmp + "/coco -m " + w.model +
                                      " --method none -n 2 -t 1 --out " + tmp + "/out",
                                  &out),
              0)
        << out;
    const std::vector<json> samples = read_jsonl(tmp + "/out/samples_pope_none_16.jsonl");
    ASSERT_EQ(samples.size(), labels.size());
    for (size_t i = 0; i < labels.size(); ++i) EXPECT_EQ(samples[i]["label"], labels[i]) << i;
    // A label file of the wrong length is refused, naming it.
    dltest::write_file(tmp + "/coco/coco_pope_popular.json", "{\"label\": \"yes\"}\n");
    const std::string e = dltest::expect_cli_error("eval --task pope --questions " + tmp + "/llava_pope_test.jsonl --images " +
                                                   w.scenes + " --annotations " + tmp + "/coco -m " + w.model +
                                                   " --method none --out " + tmp + "/out2");
    EXPECT_NE(e.find("coco_pope_popular.json"), std::string::npos) << e;
}

}  // namespace

// LLaVA-NeXT: the span's length follows from each picture, so --ratio is refused, "none" is
// recorded as budget 0, and every sample carries its picture's own image-token count, which must
// be the span `dartlens-cli run --json` reports for that picture.
TEST(EvalCli, NextBudgetsAreAbsoluteAndCountsPerPicture) {
    const World& w = world();
    const std::string root = dltest::scratch_dir("eval-next");
    const std::string model = root + "/next-tiny";
    dl::make_model("next-tiny", model, 3);
    const std::string base = "eval --task pope -m " + model + " --questions " + w.questions + " --images " + w.scenes +
                             " -n 2 -t 1 --method none,dart ";
    const std::string e = dltest::expect_cli_error(base + "--ratio 0.5 --out " + root + "/r");
    EXPECT_NE(e.find("LLaVA-NeXT"), std::string::npos) << e;
    EXPECT_NE(e.find("--keep"), std::string::npos) << e;
    std::string out;
    ASSERT_EQ(dltest::run_command(cli() + " " + base + "--keep 16 --out " + root + "/out", &out), 0) << out;
    const std::vector<json> none = read_jsonl(root + "/out/samples_pope_none_0.jsonl");
    const std::vector<json> dart = read_jsonl(root + "/out/samples_pope_dart_16.jsonl");
    ASSERT_EQ(none.size(), 6u);
    ASSERT_EQ(dart.size(), 6u);
    std::map<std::string, int> span;  // picture -> span length from `run`
    for (size_t i = 0; i < none.size(); ++i) {
        const std::string image = none[i]["image"].get<std::string>();
        if (!span.count(image)) {
            std::string log;
            const std::string js = root + "/" + image + ".json";
            ASSERT_EQ(dltest::run_command(cli() + " run -m " + model + " --image " + w.scenes + "/" + image +
                                              " -p x -n 1 -t 1 --json " + js,
                                          &log),
                      0)
                << log;
            span[image] = json::parse(dltest::read_file(js))["image_span"]["length"].get<int>();
        }
        EXPECT_EQ(none[i]["budget"], 0);
        EXPECT_EQ(none[i]["num_image_tokens"], span[image]) << image;
        EXPECT_EQ(none[i]["kept_count"], span[image]) << image;
        EXPECT_EQ(dart[i]["num_image_tokens"], span[image]) << image;
        EXPECT_EQ(dart[i]["kept_count"], 4 + 8 * (16 / 8)) << image;  // 4 image pivots + 8 pivots x quota 2
    }
    const json results = json::parse(dltest::read_file(root + "/out/results.json"));
    EXPECT_EQ(results["config"]["num_image_tokens"], 0);
}
