// `dartlens-cli eval` and `eval-merge`: batch hallucination evaluation of pruning methods.
//
// One model load answers every question of a question file with every method and budget. POPE
// (object existence, yes/no) is scored as LLaVA's llava/eval/eval_pope.py scores it, with
// lmms-eval's metric names; the scene world's other questions (core/scenes/scenes.h) are scored as short
// answers (colour, count, position: accuracy) or as object sets (describe: precision/recall/F1 of
// the ObjectVocabulary objects mentioned, core/scenes/objects.h).
//
// Questions are processed grouped by image, so an image's vision features are computed once and
// a question's unpruned trunk is shared by every method and budget (the Session's prefix cache).
// Every answer is appended to OUTDIR/samples_<task>_<method>_<budget>.jsonl and flushed at once;
// results.json/.csv/.md are computed from the samples alone (eval_metrics), so shards merged by
// eval_merge give exactly what one unsharded run gives.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace dl {

// One answered (question, method, budget). The fields `pred` and `label` are what is scored:
//   pope:               pred = pope_parse_answer(answer) ("yes"/"no"), label = "yes"/"no";
//   scenes color/count/position: pred = short_answer_normalise(answer), label = the reference
//                       normalised the same way;
//   scenes describe:    pred_objects / label_objects = the vocabulary's objects in the answer / in
//                       the reference text (pred and label stay empty; in samples_*.jsonl they
//                       are written as the arrays "pred" and "label");
//   chair:              pred_objects = the canonical object of every object mention of the
//                       caption, in order (repeats kept, as CHAIR counts mentions), label_objects
//                       = the image's annotated objects (canonical, sorted, distinct); written as
//                       the arrays "pred" and "label".
struct EvalSample {
    int index = 0;                 // 0-based position of the question in the question file
    std::string question_id;       // the file's question_id as JSON text ("12" or "\"abc\"")
    std::string task;              // "pope" | "scenes" | "chair"
    std::string split;             // pope: category or "all"; scenes: kind; chair: "all"
    std::string method;            // none | dart | fastv | random
    int budget = 0;                // nominal B (none: the full image-token count)
    std::string image, question;
    std::string answer;            // raw generated text
    std::string reference;         // scenes: the reference answer text as written
    std::string pred, label;
    std::vector<std::string> pred_objects, label_objects;  // describe (sorted) and chair only
    int kept_count = 0, num_image_tokens = 0, output_tokens = 0;
    double vision_ms = 0, prefill_ms = 0, selection_ms = 0, decode_ms = 0, total_ms = 0, wall_ms = 0;
};

// One line of results: a task/split/method/budget group of samples and its metrics, in a fixed
// order (pope: pope_accuracy, pope_precision, pope_recall, pope_f1_score, pope_yes_ratio;
// scenes: scenes_accuracy, or describe_precision, describe_recall, describe_f1; chair: chair_s,
// chair_i, chair_recall). All metrics are fractions in [0,1].
struct EvalRow {
    std::string task, split, method;
    int budget = 0;
    int n = 0;
    std::vector<std::pair<std::string, double>> metrics;
    double mean_kept_count = 0, mean_prefill_ms = 0, mean_decode_ms = 0, mean_total_ms = 0;
    // The named metric; dl::Error when the row has none of that name.
    double metric(const std::string& name) const;
};

// LLaVA's eval_pope.py rule: the text before the first '.', commas removed, split on single
// spaces; "no" when a word is exactly "No", "not" or "no", otherwise "yes" (so "Not" or "NO!"
// count as yes, as there).
std::string pope_parse_answer(const std::string& text);

// Short-answer normalisation for the scene world: lower-case, punctuation stripped, the first
// word; for kind "count" the number words one..eight become digits ("Two." -> "2").
std::string short_answer_normalise(const std::string& text, const std::string& kind);

class ObjectVocabulary;

// Fills a sample's pred/label (or pred_objects/label_objects) from its answer and the question's
// truth: the pope label ("yes"/"no"), the scene question's reference answer text (kept in
// `reference`), or for chair the image's annotated objects '|'-joined. `vocabulary` is needed for
// scenes describe and chair samples.
void eval_score(EvalSample& sample, const std::string& truth, const ObjectVocabulary* vocabulary);

// Metrics of a set of samples, one row per task/split/method/budget, plus for POPE one row per
// method/budget with split "all" over every question (unless every split already is "all").
// Rows are ordered by task, method (none, dart, fastv, random, then others by name), budget
// ascending, split ("all" first, then by name); sample order does not matter.
//   POPE (positive = yes): accuracy = (TP+TN)/n, precision = TP/(TP+FP) (0 when nothing was
//   predicted yes: eval_pope.py would divide by zero), recall = TP/(TP+FN) (0 without positive
//   labels), F1 = 2PR/(P+R) (0 when P+R = 0), yes_ratio = predicted yes / n.
//   scenes short answers: accuracy = pred == label. describe: per-question precision, recall and
//   F1 of the object sets (dl::score_sets: precision 1 when nothing is predicted, F1 1 when both
//   sets are empty), averaged over the questions.
//   chair (Rohrbach et al. 2018): chair_s = captions mentioning an object not annotated / n;
//   chair_i = such mentions / all object mentions (0 without mentions); chair_recall = annotated
//   objects mentioned / annotated objects, over all captions.
std::vector<EvalRow> eval_metrics(const std::vector<EvalSample>& samples);

// A sample as one line of samples_*.jsonl, and back. eval_sample_from_json throws dl::Error
// naming `where` ("DIR/samples_x.jsonl:3") on malformed input.
std::string eval_sample_to_json(const EvalSample& sample);
EvalSample eval_sample_from_json(const std::string& line, const std::string& where);

// results.json ({"config": ..., "rows": [...]}), results.csv and results.md from rows.
std::string eval_results_json(const std::vector<EvalRow>& rows, const std::string& config_json);
std::string eval_results_csv(const std::vector<EvalRow>& rows);
std::string eval_results_markdown(const std::vector<EvalRow>& rows);

struct EvalArgs {
    std::string task;              // pope | scenes | chair
    std::string questions;         // question file (JSON lines); chair: optional list of images
    std::string images;            // image directory (default: the question file's directory)
    std::string annotations;       // pope: directory of coco_pope_<category>.json label files, for
                                   // question files without labels (LLaVA's llava_pope_test.jsonl);
                                   // chair: COCO-format instances file (the objects of each image)
    std::string prompt = "Please describe this image in detail.";  // chair: the caption request
    std::string model_dir;
    std::string methods = "none,dart,fastv";
    std::string keep, ratio;       // budget lists (bench syntax: "64,128,192" or "64-192+64")
    int layer = 2;
    uint64_t seed = 0;
    std::string shard;             // "I/N", 1-based I; empty = all questions
    bool resume = false;
    int n_predict = 64;
    int limit = -1;                // only the first N questions of the file (before sharding)
    std::string template_name = "llava_v1", preprocess = "auto";
    std::string device = "auto", dtype = "auto";
    int threads = 0;
    std::string vocabulary;        // scenes | coco | a CHAIR synonyms file ("" = scenes; chair needs one)
    std::string out_dir;
};

// Runs the evaluation; returns the process exit status (0, or 130 when stopped by SIGINT after the
// question in flight: samples flushed and results written for what was answered). Throws
// dl::Error with one line naming the file and line at fault for bad input.
int run_eval(const EvalArgs& args);

// Merges the samples of shard directories (eval --shard I/N runs) into out_dir and recomputes the
// results: exactly what one unsharded run writes, timings aside. dl::Error when two shards answer
// the same (question, method, budget) differently or their configurations differ.
int run_eval_merge(const std::vector<std::string>& dirs, const std::string& out_dir);

// "2/5" -> index 2, count 5; dl::Error naming --shard unless 1 <= index <= count.
void eval_parse_shard(const std::string& text, int* index, int* count);

}  // namespace dl
