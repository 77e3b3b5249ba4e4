// Batch evaluation (see eval.h): question files, scoring, the answer loop with resume, shards and
// SIGINT, the samples files and the results tables.
#include "core/analysis/eval.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "core/api.h"
#include "core/analysis/bench.h"
#include "core/common.h"
#include "core/scenes/objects.h"
#include "core/pruning/pruner.h"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace dl {

namespace {

// One line of a JSON-lines file as a JSON object; dl::Error naming `where` ("FILE:LINE") otherwise.
nlohmann::json parse_object_line(const std::string& line, const std::string& where) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
        throw Error(str_cat(where, ": invalid JSON: ", e.what()));
    }
    if (!j.is_object()) throw Error(str_cat(where, ": expected a JSON object"));
    return j;
}

using Clock = std::chrono::steady_clock;

std::string to_lower(std::string s) {
    for (char& c : s) c = char(std::tolower((unsigned char)c));
    return s;
}

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(str_cat(path, ": cannot open"));
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Writes through a temporary file and a rename, so a reader never sees half a file.
void write_atomic(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        f << text;
        if (!f) throw Error(str_cat(path, ": cannot write"));
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) throw Error(str_cat(path, ": cannot write (", ec.message(), ")"));
}

int method_rank(const std::string& m) {
    const std::vector<std::string>& order = pruner_names();  // the registry's display order
    return int(std::find(order.begin(), order.end(), m) - order.begin());
}

double mean_of(const std::vector<double>& v) {
    if (v.empty()) return 0;
    double s = 0;
    for (double x : v) s += x;
    return s / double(v.size());
}

std::string samples_file_name(const std::string& task, const std::string& method, int budget) {
    return str_cat("samples_", task, "_", method, "_", budget, ".jsonl");
}

std::string fmt(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

// --- questions --------------------------------------------------------------------------------

struct Question {
    int index = 0;            // 0-based among the file's non-empty lines
    int line = 0;             // 1-based line number, for messages
    std::string question_id;  // JSON text
    std::string image, image_path, text;
    std::string split;        // pope: category or "all"; scenes: kind
    std::string label;        // pope: yes/no; scenes: the reference answer text
};

std::string string_field(const nlohmann::json& j, const char* key, const std::string& where, bool required = true) {
    if (!j.contains(key)) {
        if (required) throw Error(str_cat(where, ": missing field '", key, "'"));
        return "";
    }
    if (!j[key].is_string()) throw Error(str_cat(where, ": field '", key, "' must be a string"));
    return j[key].get<std::string>();
}

// Calls fn(object, line number, "FILE:LINE") for every non-blank line of a JSON-lines file.
template <class Fn>
void for_each_json_line(const std::string& path, Fn&& fn) {
    std::istringstream in(read_all(path));
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = str_cat(path, ":", n);
        fn(parse_object_line(line, where), n, where);
    }
}

// A question's `question_id` as JSON text; integers and strings only.
std::string question_id_field(const nlohmann::json& j, const std::string& where) {
    if (!j.contains("question_id")) throw Error(str_cat(where, ": missing field 'question_id'"));
    if (!j["question_id"].is_number_integer() && !j["question_id"].is_string())
        throw Error(str_cat(where, ": field 'question_id' must be an integer or a string"));
    return j["question_id"].dump();
}

std::string pope_label(const std::string& value, const std::string& where) {
    const std::string v = to_lower(value);
    if (v != "yes" && v != "no") throw Error(str_cat(where, ": label must be \"yes\" or \"no\" (got \"", value, "\")"));
    return v;
}

// Labels of LLaVA's coco_pope_<category>.json, in file order (eval_pope.py pairs the i-th answer of
// a category with the i-th label of its file).
std::vector<std::string> read_annotation_labels(const std::string& path) {
    std::vector<std::string> labels;
    for_each_json_line(path, [&](const nlohmann::json& j, int, const std::string& where) {
        labels.push_back(pope_label(string_field(j, "label", where), where));
    });
    return labels;
}

// COCO-format instance annotations (instances_val2014.json, or the scene world's instances.json):
// image file name -> the names of its annotated categories, and the images in file order.
struct CocoInstances {
    std::vector<std::pair<long long, std::string>> images;        // (id, file_name), file order
    std::map<std::string, std::vector<std::string>> objects;     // file_name -> category names
};

CocoInstances read_coco_instances(const std::string& path) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_all(path));
    } catch (const nlohmann::json::exception& e) {
        throw Error(str_cat(path, ": not valid JSON (", e.what(), ")"));
    }
    auto array = [&](const char* key) -> const nlohmann::json& {
        if (!j.is_object() || !j.contains(key) || !j[key].is_array())
            throw Error(str_cat(path, ": COCO instances need an array '", key, "'"));
        return j[key];
    };
    auto id_of = [&](const nlohmann::json& o, const char* key, const char* what, size_t i) {
        if (!o.is_object() || !o.contains(key) || !o[key].is_number_integer())
            throw Error(str_cat(path, ": ", what, "[", i, "] needs an integer '", key, "'"));
        return o[key].get<long long>();
    };
    std::map<long long, std::string> category, file_of;
    const nlohmann::json& cats = array("categories");
    for (size_t i = 0; i < cats.size(); ++i) {
        const long long id = id_of(cats[i], "id", "categories", i);
        if (!cats[i].contains("name") || !cats[i]["name"].is_string())
            throw Error(str_cat(path, ": categories[", i, "] needs a string 'name'"));
        category[id] = cats[i]["name"].get<std::string>();
    }
    CocoInstances out;
    const nlohmann::json& images = array("images");
    for (size_t i = 0; i < images.size(); ++i) {
        const long long id = id_of(images[i], "id", "images", i);
        if (!images[i].contains("file_name") || !images[i]["file_name"].is_string())
            throw Error(str_cat(path, ": images[", i, "] needs a string 'file_name'"));
        const std::string name = images[i]["file_name"].get<std::string>();
        if (!file_of.emplace(id, name).second) throw Error(str_cat(path, ": images[", i, "]: id ", id, " appears twice"));
        out.images.push_back({id, name});
        out.objects[name];
    }
    const nlohmann::json& anns = array("annotations");
    for (size_t i = 0; i < anns.size(); ++i) {
        const long long image = id_of(anns[i], "image_id", "annotations", i);
        const long long cat = id_of(anns[i], "category_id", "annotations", i);
        if (!file_of.count(image)) throw Error(str_cat(path, ": annotations[", i, "]: no image with id ", image));
        if (!category.count(cat)) throw Error(str_cat(path, ": annotations[", i, "]: no category with id ", cat));
        out.objects[file_of[image]].push_back(category[cat]);
    }
    return out;
}

// The canonical objects of a list of category names under a vocabulary ("dining table" -> its
// canonical name; a name outside the vocabulary stays as it is, lower-cased), sorted, distinct.
std::vector<std::string> canonical_objects(const std::vector<std::string>& names, const ObjectVocabulary& v) {
    std::set<std::string> out;
    for (const std::string& n : names) {
        std::string phrase;
        for (const Word& w : split_words(n))
            if (!w.norm.empty()) phrase += (phrase.empty() ? "" : " ") + w.norm;
        const std::string c = v.canonical(phrase);
        out.insert(c.empty() ? phrase : c);
    }
    return {out.begin(), out.end()};
}

std::string join_bar(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& i : items) out += (out.empty() ? "" : "|") + i;
    return out;
}

// CHAIR questions: one caption request per image, of the --questions file (JSON lines with
// `image`, optional `question_id` and `text`) or, without one, of every image of --annotations.
// The label is the image's annotated objects, canonical and '|'-joined.
std::vector<Question> load_chair_questions(const EvalArgs& a, const ObjectVocabulary& vocabulary) {
    const CocoInstances coco = read_coco_instances(a.annotations);
    std::vector<Question> out;
    auto add = [&](Question q, const std::string& where) {
        const std::string name = fs::path(q.image).filename().string();
        auto it = coco.objects.find(name);
        if (it == coco.objects.end()) it = coco.objects.find(q.image);
        if (it == coco.objects.end())
            throw Error(str_cat(where, ": image ", q.image, " is not among the images of ", a.annotations));
        q.label = join_bar(canonical_objects(it->second, vocabulary));
        q.split = "all";
        if (q.text.empty()) q.text = a.prompt;
        const fs::path dir = a.images.empty() ? fs::path(a.questions).parent_path() : fs::path(a.images);
        q.image_path = fs::path(q.image).is_absolute() ? q.image : (dir / q.image).string();
        std::error_code ec;
        if (!fs::is_regular_file(q.image_path, ec)) throw Error(str_cat(where, ": image ", q.image_path, " not found"));
        q.index = int(out.size());
        out.push_back(q);
    };
    if (a.questions.empty()) {
        for (const auto& [id, name] : coco.images) {
            if (a.limit >= 0 && out.size() >= size_t(a.limit)) break;
            Question q;
            q.question_id = std::to_string(id);
            q.image = name;
            add(q, str_cat(a.annotations, ": image id ", id));
        }
    } else {
        for_each_json_line(a.questions, [&](const nlohmann::json& j, int line, const std::string& where) {
            Question q;
            q.line = line;
            q.image = string_field(j, "image", where);
            q.text = string_field(j, "text", where, false);
            q.question_id = j.contains("question_id") ? question_id_field(j, where) : nlohmann::json(q.image).dump();
            add(q, where);
        });
    }
    if (out.empty()) throw Error(str_cat(a.questions.empty() ? a.annotations : a.questions, ": no images to caption"));
    return out;
}

std::vector<Question> load_questions(const EvalArgs& a) {
    const std::string image_dir = a.images.empty() ? fs::path(a.questions).parent_path().string() : a.images;
    std::vector<Question> out;
    std::vector<int> unlabelled;  // positions in out
    for_each_json_line(a.questions, [&](const nlohmann::json& j, int line, const std::string& where) {
        Question q;
        q.index = int(out.size());
        q.line = line;
        q.question_id = question_id_field(j, where);
        q.image = string_field(j, "image", where);
        q.text = string_field(j, "text", where);
        if (a.task == "pope") {
            q.split = string_field(j, "category", where, false);
            if (q.split.empty()) q.split = "all";
            if (j.contains("label")) q.label = pope_label(string_field(j, "label", where), where);
            else unlabelled.push_back(int(out.size()));
        } else {
            q.split = string_field(j, "kind", where);
            if (q.split != "describe" && q.split != "color" && q.split != "count" && q.split != "position")
                throw Error(str_cat(where, ": kind must be describe, color, count or position (got \"", q.split, "\")"));
            q.label = string_field(j, "answer", where);
        }
        q.image_path = fs::path(q.image).is_absolute() ? q.image : (fs::path(image_dir) / q.image).string();
        std::error_code ec;
        if (!fs::is_regular_file(q.image_path, ec))
            throw Error(str_cat(where, ": image ", q.image_path, " not found"));
        out.push_back(q);
    });
    if (out.empty()) throw Error(str_cat(a.questions, ": no questions"));

    if (!unlabelled.empty()) {
        const Question& first = out[size_t(unlabelled.front())];
        if (a.annotations.empty())
            throw Error(str_cat(a.questions, ":", first.line, ": missing field 'label' (for LLaVA's llava_pope_test.jsonl ",
                                "give --annotations DIR holding coco_pope_<category>.json)"));
        std::map<std::string, std::vector<int>> by_category;  // unlabelled questions, file order
        for (int i : unlabelled) {
            const Question& q = out[size_t(i)];
            if (q.split == "all")
                throw Error(str_cat(a.questions, ":", q.line, ": missing fields 'label' and 'category' (--annotations ",
                                    "pairs labels by category)"));
            by_category[q.split].push_back(i);
        }
        for (const auto& [category, members] : by_category) {
            const std::string path = (fs::path(a.annotations) / str_cat("coco_pope_", category, ".json")).string();
            const std::vector<std::string> labels = read_annotation_labels(path);
            if (labels.size() != members.size())
                throw Error(str_cat(path, ": ", labels.size(), " labels for ", members.size(), " unlabelled '", category,
                                    "' questions in ", a.questions));
            for (size_t k = 0; k < members.size(); ++k) out[size_t(members[k])].label = labels[k];
        }
    }
    return out;
}

// --- SIGINT ---------------------------------------------------------------------------------

std::atomic<bool> g_stop{false};

extern "C" void on_sigint(int) { g_stop = true; }

// Installs the handler for the life of the object; SA_RESETHAND makes a second Ctrl-C kill at once.
class SigintGuard {
public:
    SigintGuard() {
        g_stop = false;
        struct sigaction sa {};
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        sigaction(SIGINT, &sa, &old_);
    }
    ~SigintGuard() { sigaction(SIGINT, &old_, nullptr); }

private:
    struct sigaction old_ {};
};

// --- progress -------------------------------------------------------------------------------

// A bar redrawn in place on a terminal; elsewhere (logs, CI) one line per 10%.
class Progress {
public:
    explicit Progress(int total) : total_(total), tty_(::isatty(STDERR_FILENO) != 0), start_(Clock::now()) {}

    void step(int done) {
        if (total_ <= 0) return;
        const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
        const double rate = secs > 0 ? done / secs : 0;
        const double eta = rate > 0 ? (total_ - done) / rate : 0;
        const int pct = int(100.0 * done / total_);
        char eta_text[32];
        std::snprintf(eta_text, sizeof eta_text, "%d:%02d", int(eta) / 60, int(eta) % 60);
        if (tty_) {
            const int width = 30, filled = width * done / total_;
            std::string bar(size_t(filled), '=');
            bar += std::string(size_t(width - filled), ' ');
            std::fprintf(stderr, "\r[%s] %d/%d (%d%%) %.2f answers/s ETA %s ", bar.c_str(), done, total_, pct, rate,
                         eta_text);
            if (done == total_) std::fprintf(stderr, "\n");
        } else if (pct / 10 > last_decile_ || done == total_) {
            last_decile_ = pct / 10;
            std::fprintf(stderr, "eval: %d/%d answers (%d%%), %.2f answers/s, ETA %s\n", done, total_, pct, rate,
                         eta_text);
        }
        std::fflush(stderr);
    }
    void finish_line() {
        if (tty_) std::fprintf(stderr, "\n");
    }

private:
    int total_;
    bool tty_;
    Clock::time_point start_;
    int last_decile_ = 0;
};

// --- samples files --------------------------------------------------------------------------

struct Config {
    std::string method;
    int budget = 0;
    std::string file;  // samples file name
};

// Reads a samples file written by run_eval. With tolerate_partial_tail, a malformed last line (a
// line cut by a kill) is dropped instead of refused.
std::vector<EvalSample> read_samples(const std::string& path, bool tolerate_partial_tail) {
    std::istringstream in(read_all(path));
    std::vector<std::pair<int, std::string>> lines;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.find_first_not_of(" \t\r") != std::string::npos) lines.emplace_back(n, line);
    }
    std::vector<EvalSample> out;
    for (size_t i = 0; i < lines.size(); ++i) {
        const std::string where = str_cat(path, ":", lines[i].first);
        try {
            out.push_back(eval_sample_from_json(lines[i].second, where));
        } catch (const Error&) {
            if (tolerate_partial_tail && i + 1 == lines.size()) {
                std::fprintf(stderr, "eval: %s: dropping an incomplete last line (answered again)\n", where.c_str());
                break;
            }
            throw;
        }
    }
    return out;
}

std::string samples_text(std::vector<EvalSample> samples) {
    std::stable_sort(samples.begin(), samples.end(),
                     [](const EvalSample& x, const EvalSample& y) { return x.index < y.index; });
    std::string text;
    for (const EvalSample& s : samples) text += eval_sample_to_json(s) + "\n";
    return text;
}

void write_results(const std::string& out_dir, const std::vector<EvalRow>& rows, const std::string& config_json) {
    write_atomic((fs::path(out_dir) / "results.json").string(), eval_results_json(rows, config_json));
    write_atomic((fs::path(out_dir) / "results.csv").string(), eval_results_csv(rows));
    write_atomic((fs::path(out_dir) / "results.md").string(), eval_results_markdown(rows));
}

std::vector<std::string> samples_files_in(const std::string& dir, const std::string& prefix) {
    std::vector<std::string> names;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return names;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (e.is_regular_file() && name.rfind(prefix, 0) == 0 && name.size() > 6 &&
            name.compare(name.size() - 6, 6, ".jsonl") == 0)
            names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

// --- scoring ----------------------------------------------------------------------------------

std::string pope_parse_answer(const std::string& text) {
    std::string t = text;
    const size_t dot = t.find('.');
    if (dot != std::string::npos) t = t.substr(0, dot);
    t.erase(std::remove(t.begin(), t.end(), ','), t.end());
    // Python's str.split(' '): single spaces only, so "\n" or tabs do not separate words.
    size_t start = 0;
    while (true) {
        const size_t space = t.find(' ', start);
        const std::string word = t.substr(start, space == std::string::npos ? std::string::npos : space - start);
        if (word == "No" || word == "not" || word == "no") return "no";
        if (space == std::string::npos) break;
        start = space + 1;
    }
    return "yes";
}

std::string short_answer_normalise(const std::string& text, const std::string& kind) {
    std::string cleaned;
    for (char c : text) {
        if (std::ispunct((unsigned char)c)) continue;
        cleaned += char(std::tolower((unsigned char)c));
    }
    std::istringstream is(cleaned);
    std::string word;
    is >> word;
    if (kind == "count") {
        static const char* numbers[] = {"one", "two", "three", "four", "five", "six", "seven", "eight"};
        for (int i = 0; i < 8; ++i)
            if (word == numbers[i]) return std::to_string(i + 1);
    }
    return word;
}

void eval_score(EvalSample& s, const std::string& truth, const ObjectVocabulary* vocabulary) {
    if (s.task == "pope") {
        s.pred = pope_parse_answer(s.answer);
        s.label = truth;
        return;
    }
    if (s.task == "chair") {
        if (!vocabulary) throw Error("eval_score: chair samples need an object vocabulary");
        s.pred_objects.clear();
        for (const ObjectMention& m : vocabulary->mentions(split_words(s.answer))) s.pred_objects.push_back(m.object);
        s.label_objects.clear();
        std::stringstream ss(truth);
        std::string item;
        while (std::getline(ss, item, '|'))
            if (!item.empty()) s.label_objects.push_back(item);
        std::sort(s.label_objects.begin(), s.label_objects.end());
        s.label_objects.erase(std::unique(s.label_objects.begin(), s.label_objects.end()), s.label_objects.end());
        return;
    }
    s.reference = truth;
    if (s.split == "describe") {
        if (!vocabulary) throw Error("eval_score: describe samples need an object vocabulary");
        const std::set<std::string> pred = vocabulary->objects_in(s.answer), label = vocabulary->objects_in(truth);
        s.pred_objects.assign(pred.begin(), pred.end());
        s.label_objects.assign(label.begin(), label.end());
    } else {
        s.pred = short_answer_normalise(s.answer, s.split);
        s.label = short_answer_normalise(truth, s.split);
    }
}

double EvalRow::metric(const std::string& name) const {
    for (const auto& [key, value] : metrics)
        if (key == name) return value;
    throw Error(str_cat("results row ", task, "/", split, "/", method, "/", budget, ": no metric '", name, "'"));
}

std::vector<EvalRow> eval_metrics(const std::vector<EvalSample>& samples) {
    struct Key {
        std::string task;
        int method_rank;
        std::string method;
        int budget;
        int split_rank;
        std::string split;
        bool operator<(const Key& o) const {
            return std::tie(task, method_rank, method, budget, split_rank, split) <
                   std::tie(o.task, o.method_rank, o.method, o.budget, o.split_rank, o.split);
        }
    };
    std::map<Key, std::vector<const EvalSample*>> groups;
    std::set<std::pair<std::string, std::string>> pope_non_all;  // (method, budget) with a real split
    for (const EvalSample& s : samples) {
        groups[{s.task, method_rank(s.method), s.method, s.budget, s.split == "all" ? 0 : 1, s.split}].push_back(&s);
        if (s.task == "pope" && s.split != "all")
            groups[{s.task, method_rank(s.method), s.method, s.budget, 0, "all"}].push_back(&s);
    }
    std::vector<EvalRow> rows;
    for (const auto& [key, members] : groups) {
        EvalRow r;
        r.task = key.task, r.split = key.split, r.method = key.method, r.budget = key.budget;
        r.n = int(members.size());
        std::vector<double> kept, prefill, decode, total;
        for (const EvalSample* s : members) {
            kept.push_back(s->kept_count);
            prefill.push_back(s->prefill_ms);
            decode.push_back(s->decode_ms);
            total.push_back(s->total_ms);
        }
        r.mean_kept_count = mean_of(kept), r.mean_prefill_ms = mean_of(prefill);
        r.mean_decode_ms = mean_of(decode), r.mean_total_ms = mean_of(total);
        const double n = double(r.n);
        if (key.task == "pope") {
            int tp = 0, fp = 0, tn = 0, fn = 0;
            for (const EvalSample* s : members) {
                const bool pred = s->pred == "yes", label = s->label == "yes";
                tp += pred && label, fp += pred && !label, tn += !pred && !label, fn += !pred && label;
            }
            const double precision = tp + fp ? double(tp) / (tp + fp) : 0.0;
            const double recall = tp + fn ? double(tp) / (tp + fn) : 0.0;
            const double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
            r.metrics = {{"pope_accuracy", (tp + tn) / n},
                         {"pope_precision", precision},
                         {"pope_recall", recall},
                         {"pope_f1_score", f1},
                         {"pope_yes_ratio", (tp + fp) / n}};
        } else if (key.split == "describe") {
            std::vector<double> p, rc, f;
            for (const EvalSample* s : members) {
                const SetScore sc =
                    score_sets(std::set<std::string>(s->pred_objects.begin(), s->pred_objects.end()),
                               std::set<std::string>(s->label_objects.begin(), s->label_objects.end()));
                p.push_back(sc.precision());
                rc.push_back(sc.recall());
                f.push_back(sc.f1());
            }
            r.metrics = {{"describe_precision", mean_of(p)}, {"describe_recall", mean_of(rc)}, {"describe_f1", mean_of(f)}};
        } else if (key.task == "chair") {
            // CHAIR (Rohrbach et al. 2018, chair.py): CHAIR_s = captions with a hallucinated
            // object / captions; CHAIR_i = hallucinated object mentions / object mentions (every
            // mention counts); recall = annotated objects mentioned / annotated objects.
            int hallucinated_captions = 0, mentions = 0, hallucinated = 0, covered = 0, actual = 0;
            for (const EvalSample* s : members) {
                const std::set<std::string> truth(s->label_objects.begin(), s->label_objects.end());
                bool any = false;
                for (const std::string& o : s->pred_objects) {
                    ++mentions;
                    if (!truth.count(o)) ++hallucinated, any = true;
                }
                hallucinated_captions += any;
                const std::set<std::string> said(s->pred_objects.begin(), s->pred_objects.end());
                for (const std::string& o : truth) covered += said.count(o) ? 1 : 0;
                actual += int(truth.size());
            }
            r.metrics = {{"chair_s", hallucinated_captions / n},
                         {"chair_i", mentions ? double(hallucinated) / mentions : 0.0},
                         {"chair_recall", actual ? double(covered) / actual : 0.0}};
        } else {
            int correct = 0;
            for (const EvalSample* s : members) correct += s->pred == s->label;
            r.metrics = {{"scenes_accuracy", correct / n}};
        }
        rows.push_back(r);
    }
    return rows;
}

// --- JSON -------------------------------------------------------------------------------------

std::string eval_sample_to_json(const EvalSample& s) {
    ojson j;
    j["index"] = s.index;
    j["question_id"] = ojson::parse(s.question_id.empty() ? "null" : s.question_id);
    j["task"] = s.task;
    j["split"] = s.split;
    j["method"] = s.method;
    j["budget"] = s.budget;
    j["image"] = s.image;
    j["question"] = s.question;
    j["answer"] = s.answer;
    if (s.task == "chair" || (s.task == "scenes" && s.split == "describe")) {
        j["pred"] = s.pred_objects;
        j["label"] = s.label_objects;
    } else {
        j["pred"] = s.pred;
        j["label"] = s.label;
    }
    if (s.task == "scenes") j["reference"] = s.reference;
    j["kept_count"] = s.kept_count;
    j["num_image_tokens"] = s.num_image_tokens;
    j["output_tokens"] = s.output_tokens;
    j["vision_ms"] = s.vision_ms;
    j["prefill_ms"] = s.prefill_ms;
    j["selection_ms"] = s.selection_ms;
    j["decode_ms"] = s.decode_ms;
    j["total_ms"] = s.total_ms;
    j["wall_ms"] = s.wall_ms;
    return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

EvalSample eval_sample_from_json(const std::string& line, const std::string& where) {
    const nlohmann::json j = parse_object_line(line, where);
    EvalSample s;
    auto need = [&](const char* key) -> const nlohmann::json& {
        if (!j.contains(key)) throw Error(str_cat(where, ": missing field '", key, "'"));
        return j[key];
    };
    auto str = [&](const char* key) {
        const nlohmann::json& v = need(key);
        if (!v.is_string()) throw Error(str_cat(where, ": field '", key, "' must be a string"));
        return v.get<std::string>();
    };
    auto integer = [&](const char* key) {
        const nlohmann::json& v = need(key);
        if (!v.is_number_integer()) throw Error(str_cat(where, ": field '", key, "' must be an integer"));
        return v.get<int>();
    };
    auto number = [&](const char* key) {
        if (!j.contains(key)) return 0.0;
        if (!j[key].is_number()) throw Error(str_cat(where, ": field '", key, "' must be a number"));
        return j[key].get<double>();
    };
    auto objects = [&](const char* key) {
        std::vector<std::string> out;
        for (const auto& v : need(key)) {
            if (!v.is_string()) throw Error(str_cat(where, ": field '", key, "' must hold strings"));
            out.push_back(v.get<std::string>());
        }
        return out;
    };
    s.index = integer("index");
    s.question_id = need("question_id").dump();
    s.task = str("task");
    if (s.task != "pope" && s.task != "scenes" && s.task != "chair")
        throw Error(str_cat(where, ": unknown task '", s.task, "'"));
    s.split = str("split");
    s.method = str("method");
    s.budget = integer("budget");
    s.image = j.value("image", "");
    s.question = j.value("question", "");
    s.answer = str("answer");
    if (s.task == "chair" || (s.task == "scenes" && s.split == "describe")) {
        if (!need("pred").is_array() || !need("label").is_array())
            throw Error(str_cat(where, ": ", s.task == "chair" ? "chair" : "describe",
                                " samples need 'pred' and 'label' arrays"));
        s.pred_objects = objects("pred");
        s.label_objects = objects("label");
    } else {
        s.pred = str("pred");
        s.label = str("label");
    }
    if (s.task == "scenes") s.reference = j.value("reference", "");
    s.kept_count = integer("kept_count");
    s.num_image_tokens = j.value("num_image_tokens", 0);
    s.output_tokens = j.value("output_tokens", 0);
    s.vision_ms = number("vision_ms");
    s.prefill_ms = number("prefill_ms");
    s.selection_ms = number("selection_ms");
    s.decode_ms = number("decode_ms");
    s.total_ms = number("total_ms");
    s.wall_ms = number("wall_ms");
    return s;
}

// --- results tables ---------------------------------------------------------------------------

namespace {

// Metric columns in first-seen order over the rows (rows come in a fixed order).
std::vector<std::string> metric_columns(const std::vector<EvalRow>& rows) {
    std::vector<std::string> cols;
    for (const EvalRow& r : rows)
        for (const auto& m : r.metrics)
            if (std::find(cols.begin(), cols.end(), m.first) == cols.end()) cols.push_back(m.first);
    return cols;
}

const double* find_metric(const EvalRow& r, const std::string& name) {
    for (const auto& m : r.metrics)
        if (m.first == name) return &m.second;
    return nullptr;
}

}  // namespace

std::string eval_results_json(const std::vector<EvalRow>& rows, const std::string& config_json) {
    ojson j;
    j["config"] = config_json.empty() ? ojson::object() : ojson::parse(config_json);
    j["rows"] = ojson::array();
    for (const EvalRow& r : rows) {
        ojson o;
        o["task"] = r.task;
        o["split"] = r.split;
        o["method"] = r.method;
        o["budget"] = r.budget;
        o["n"] = r.n;
        for (const auto& m : r.metrics) o[m.first] = m.second;
        o["mean_kept_count"] = r.mean_kept_count;
        o["mean_prefill_ms"] = r.mean_prefill_ms;
        o["mean_decode_ms"] = r.mean_decode_ms;
        o["mean_total_ms"] = r.mean_total_ms;
        j["rows"].push_back(o);
    }
    return j.dump(2) + "\n";
}

std::string eval_results_csv(const std::vector<EvalRow>& rows) {
    const std::vector<std::string> cols = metric_columns(rows);
    std::ostringstream os;
    os << "task,split,method,budget,n";
    for (const std::string& c : cols) os << "," << c;
    os << ",mean_kept_count,mean_prefill_ms,mean_decode_ms,mean_total_ms\n";
    for (const EvalRow& r : rows) {
        os << r.task << "," << r.split << "," << r.method << "," << r.budget << "," << r.n;
        for (const std::string& c : cols) {
            const double* v = find_metric(r, c);
            os << "," << (v ? fmt("%.6f", *v) : "");
        }
        os << "," << fmt("%.2f", r.mean_kept_count) << "," << fmt("%.3f", r.mean_prefill_ms) << ","
           << fmt("%.3f", r.mean_decode_ms) << "," << fmt("%.3f", r.mean_total_ms) << "\n";
    }
    return os.str();
}

std::string eval_results_markdown(const std::vector<EvalRow>& rows) {
    const std::vector<std::string> cols = metric_columns(rows);
    std::ostringstream os;
    os << "| task | split | method | budget | n |";
    for (const std::string& c : cols) os << " " << c << " |";
    os << " kept | prefill ms | decode ms | total ms |\n|---|---|---|---:|---:|";
    for (size_t i = 0; i < cols.size(); ++i) os << "---:|";
    os << "---:|---:|---:|---:|\n";
    for (const EvalRow& r : rows) {
        os << "| " << r.task << " | " << r.split << " | " << r.method << " | " << r.budget << " | " << r.n << " |";
        for (const std::string& c : cols) {
            const double* v = find_metric(r, c);
            os << " " << (v ? fmt("%.3f", *v) : "") << " |";
        }
        os << " " << fmt("%.1f", r.mean_kept_count) << " | " << fmt("%.1f", r.mean_prefill_ms) << " | "
           << fmt("%.1f", r.mean_decode_ms) << " | " << fmt("%.1f", r.mean_total_ms) << " |\n";
    }
    return os.str();
}

// --- the run ----------------------------------------------------------------------------------

void eval_parse_shard(const std::string& text, int* index, int* count) {
    const size_t slash = text.find('/');
    auto parse = [&](const std::string& part) {
        if (part.empty() || part.size() > 9 || part.find_first_not_of("0123456789") != std::string::npos)
            throw Error(str_cat("--shard: cannot parse '", text, "' (use I/N with 1 <= I <= N, e.g. 1/4)"));
        return std::stoi(part);
    };
    if (slash == std::string::npos)
        throw Error(str_cat("--shard: cannot parse '", text, "' (use I/N with 1 <= I <= N, e.g. 1/4)"));
    const int i = parse(text.substr(0, slash)), n = parse(text.substr(slash + 1));
    if (n < 1 || i < 1 || i > n) throw Error(str_cat("--shard ", text, ": need 1 <= I <= N (I is 1-based)"));
    *index = i;
    *count = n;
}

int run_eval(const EvalArgs& a) {
    // Everything that can be checked without the model is checked first.
    if (a.task.empty()) throw Error("eval: give --task pope|scenes|chair");
    if (a.task != "pope" && a.task != "scenes" && a.task != "chair")
        throw Error(str_cat("--task: unknown task '", a.task, "' (valid: pope, scenes, chair)"));
    if (a.task == "chair") {
        if (a.annotations.empty())
            throw Error("eval --task chair: give --annotations FILE (COCO-format instances, e.g. instances_val2014.json)");
        if (a.vocabulary.empty())
            throw Error("eval --task chair: give --synonyms FILE (CHAIR's synonyms.txt) or --vocabulary coco|scenes");
        if (a.questions.empty() && a.images.empty())
            throw Error("eval --task chair: give --images DIR (or --questions FILE listing the images)");
    } else if (a.questions.empty()) {
        throw Error("eval: give --questions FILE");
    }
    if (a.out_dir.empty()) throw Error("eval: give --out DIR");
    if (a.model_dir.empty()) throw Error("eval: give -m MODEL_DIR");
    if (a.n_predict < 0) throw Error("-n: must be >= 0");
    int shard_index = 1, shard_count = 1;
    if (!a.shard.empty()) eval_parse_shard(a.shard, &shard_index, &shard_count);
    std::vector<std::string> methods;
    {
        std::stringstream ss(a.methods);
        std::string m;
        while (std::getline(ss, m, ','))
            if (!m.empty() && std::find(methods.begin(), methods.end(), m) == methods.end()) methods.push_back(m);
    }
    if (methods.empty()) throw Error("--method: empty list");
    bool any_pruning = false;
    for (const std::string& m : methods) {
        const std::vector<std::string>& known = pruner_names();
        if (std::find(known.begin(), known.end(), m) == known.end()) {
            std::string valid;
            for (const std::string& k : known) valid += (valid.empty() ? "" : ", ") + k;
            throw Error(str_cat("--method: unknown method '", m, "' (valid: ", valid, ")"));
        }
        any_pruning = any_pruning || m != "none";
    }
    if (!a.keep.empty() && !a.ratio.empty()) throw Error("eval: give --keep or --ratio, not both");
    if (any_pruning && a.keep.empty() && a.ratio.empty())
        throw Error("--method: pruning methods need --keep B[,B...] or --ratio R[,R...] (only none runs without)");
    const std::vector<int> keeps = a.keep.empty() ? std::vector<int>() : parse_int_list(a.keep, "--keep");
    const std::vector<double> ratios = a.ratio.empty() ? std::vector<double>() : parse_double_list(a.ratio, "--ratio");
    for (int k : keeps)
        if (k < 0) throw Error(str_cat("--keep: budget ", k, " must be >= 0"));
    for (double r : ratios)
        if (r < 0 || r > 1) throw Error(str_cat("--ratio: ", r, " is outside [0,1]"));
    if (any_pruning && keeps.empty() && ratios.empty()) throw Error("--keep/--ratio: empty list");

    std::unique_ptr<ObjectVocabulary> own_vocabulary;
    const ObjectVocabulary* vocabulary = nullptr;
    if (a.task == "scenes" || a.task == "chair") {
        const std::string name = a.vocabulary.empty() ? "scenes" : a.vocabulary;
        if (name == "scenes" || name == "coco") {
            vocabulary = &ObjectVocabulary::builtin(name);
        } else {
            own_vocabulary = std::make_unique<ObjectVocabulary>(ObjectVocabulary::from_synonyms_file(a.vocabulary));
            vocabulary = own_vocabulary.get();
        }
    }

    std::vector<Question> all = a.task == "chair" ? load_chair_questions(a, *vocabulary) : load_questions(a);
    if (a.limit >= 0 && size_t(a.limit) < all.size()) all.resize(size_t(a.limit));
    std::vector<const Question*> mine;  // this shard's questions, file order
    for (const Question& q : all)
        if (q.index % shard_count == shard_index - 1) mine.push_back(&q);
    std::map<int, const Question*> by_index;
    for (const Question* q : mine) by_index[q->index] = q;

    const std::string prefix = str_cat("samples_", a.task, "_");
    const std::vector<std::string> existing = samples_files_in(a.out_dir, prefix);
    if (!existing.empty() && !a.resume)
        throw Error(str_cat(a.out_dir, " already holds ", existing.front(), ": add --resume to continue it, or choose ",
                            "another --out"));
    SigintGuard sigint;
    Session session;
    LoadOptions lo;
    lo.device = a.device;
    lo.dtype = a.dtype;
    lo.threads = a.threads;
    const ModelInfo info = session.load_model(a.model_dir, lo);
    // LLaVA-NeXT (anyres): the image span's length follows from each picture, so budgets are
    // absolute (--keep) and "none" is recorded as budget 0 = every image token; each sample
    // keeps its own image-token count.
    const bool anyres = info.preprocess == "anyres";
    if (anyres && !ratios.empty())
        throw Error(str_cat("--ratio: ", a.model_dir, " is LLaVA-NeXT, whose image span varies with the picture; give ",
                            "absolute budgets with --keep (the paper's: 320, 160, 640)"));
    const int n_image = anyres ? 0 : info.num_image_tokens;

    std::vector<Config> configs;
    for (const std::string& m : methods) {
        std::vector<int> budgets;
        if (m == "none") {
            budgets.push_back(n_image);
        } else {
            PruneConfig pc;
            pc.method = m;
            for (int k : keeps) {
                pc.keep = k;
                budgets.push_back(anyres ? k : pc.budget_for(n_image));  // NeXT: clamped per picture when run
            }
            pc.keep = -1;
            for (double r : ratios) {
                pc.ratio = r;
                budgets.push_back(pc.budget_for(n_image));
            }
        }
        for (int b : budgets) {
            bool dup = false;
            for (const Config& c : configs) dup = dup || (c.method == m && c.budget == b);
            if (!dup) configs.push_back({m, b, samples_file_name(a.task, m, b)});
        }
        PruneConfig check;
        check.method = m;
        check.layer = a.layer;
        validate_prune_config(check, info.num_layers);  // a bad --layer fails before any file is written
    }
    {
        std::error_code ec;
        fs::create_directories(a.out_dir, ec);
        if (ec || !fs::is_directory(a.out_dir)) throw Error(str_cat(a.out_dir, ": cannot create the directory"));
    }

    // Resume: what is already answered, checked against this run's questions.
    std::map<std::string, std::vector<EvalSample>> done;  // file -> samples
    std::map<std::string, std::set<int>> answered;        // file -> question indices
    size_t resumed = 0;
    for (const Config& c : configs) {
        const std::string path = (fs::path(a.out_dir) / c.file).string();
        if (!fs::exists(path)) continue;
        for (EvalSample& s : read_samples(path, true)) {
            auto it = by_index.find(s.index);
            if (it == by_index.end())
                throw Error(str_cat(path, ": question index ", s.index, " is not among this run's questions (another ",
                                    "--questions, --shard or --limit?)"));
            if (s.method != c.method || s.budget != c.budget)
                throw Error(str_cat(path, ": holds a ", s.method, " B=", s.budget, " sample for question index ", s.index));
            if (s.question_id != it->second->question_id)
                throw Error(str_cat(path, ": question index ", s.index, " has question_id ", s.question_id, " but ",
                                    a.questions, ":", it->second->line, " has ", it->second->question_id,
                                    " (another question file?)"));
            if (!answered[c.file].insert(s.index).second) continue;
            done[c.file].push_back(std::move(s));
            ++resumed;
        }
        write_atomic(path, samples_text(done[c.file]));  // clean start: drops a cut last line
    }

    ojson config;
    config["task"] = a.task;
    config["questions"] = a.questions;
    // where the images are (absolute), so that the GUI's benchmark view can open a question's picture
    if (a.task == "chair") {
        config["annotations"] = a.annotations;
        config["prompt"] = a.prompt;
    }
    config["images"] = fs::absolute(a.images.empty() ? fs::path(a.questions).parent_path() : fs::path(a.images))
                           .lexically_normal()
                           .string();
    config["model"] = info.name;
    config["compute_dtype"] = info.compute_dtype;
    config["num_image_tokens"] = n_image;  // 0: LLaVA-NeXT, per sample
    config["layer"] = a.layer;
    config["seed"] = a.seed;
    config["max_new_tokens"] = a.n_predict;
    config["template"] = a.template_name;
    config["preprocess"] = a.preprocess;
    if (vocabulary) config["vocabulary"] = vocabulary->name();
    if (a.limit >= 0) config["limit"] = a.limit;
    config["num_questions"] = all.size();  // of the whole file (after --limit), the same in every shard
    config["methods"] = ojson::array();
    for (const Config& c : configs) config["methods"].push_back({{"method", c.method}, {"budget", c.budget}});
    const std::string config_json = config.dump();

    // Images in order of first appearance, each with its questions in file order.
    std::vector<std::string> image_order;
    std::map<std::string, std::vector<const Question*>> by_image;
    for (const Question* q : mine) {
        if (!by_image.count(q->image_path)) image_order.push_back(q->image_path);
        by_image[q->image_path].push_back(q);
    }
    int pending = 0;
    for (const Question* q : mine)
        for (const Config& c : configs) pending += !answered[c.file].count(q->index);
    std::fprintf(stderr, "eval: %zu questions (%zu images)%s x %zu methods/budgets: %d answers to compute, %zu already in %s\n",
                 mine.size(), image_order.size(), a.shard.empty() ? "" : str_cat(", shard ", a.shard).c_str(),
                 configs.size(), pending, resumed, a.out_dir.c_str());
    if (info.random_weights)
        std::fprintf(stderr, "note: %s has random weights (generated by make-model): answers are noise\n",
                     info.dir.c_str());

    std::map<std::string, FILE*> files;
    for (const Config& c : configs) {
        const std::string path = (fs::path(a.out_dir) / c.file).string();
        FILE* f = std::fopen(path.c_str(), "ab");
        if (!f) {
            for (auto& [name, open] : files) std::fclose(open);
            throw Error(str_cat(path, ": cannot open for appending"));
        }
        files[c.file] = f;
    }
    auto close_all = [&] {
        for (auto& [name, f] : files) std::fclose(f);
        files.clear();
    };

    Progress progress(pending);
    int computed = 0;
    bool stopped = false;
    try {
        for (const std::string& image : image_order) {
            for (const Question* q : by_image[image]) {
                bool needed = false;
                for (const Config& c : configs) needed = needed || !answered[c.file].count(q->index);
                if (!needed) continue;
                if (g_stop) break;
                RunRequest req;
                req.image_path = q->image_path;
                req.question = q->text;
                req.template_name = a.template_name;
                req.preprocess = a.preprocess;
                req.max_new_tokens = a.n_predict;
                try {
                    session.prepare(req);
                } catch (const Error& e) {
                    throw Error(str_cat(a.questions, ":", q->line, ": ", e.what()));
                }
                for (const Config& c : configs) {
                    if (answered[c.file].count(q->index)) continue;
                    if (g_stop) break;
                    PruneConfig pc;
                    pc.method = c.method;
                    pc.layer = a.layer;
                    pc.keep = c.method == "none" ? -1 : c.budget;
                    pc.seed = a.seed;
                    const MethodRun r = session.run(pc, a.n_predict);
                    EvalSample s;
                    s.index = q->index;
                    s.question_id = q->question_id;
                    s.task = a.task;
                    s.split = q->split;
                    s.method = c.method;
                    s.budget = c.budget;
                    s.image = q->image;
                    s.question = q->text;
                    s.answer = r.text;
                    eval_score(s, q->label, vocabulary);
                    s.kept_count = r.pruning.kept_count;
                    s.num_image_tokens = r.pruning.num_image_tokens;
                    s.output_tokens = int(r.output_ids.size());
                    s.vision_ms = r.timing_ms.vision;
                    s.prefill_ms = r.timing_ms.prefill;
                    s.selection_ms = r.timing_ms.selection;
                    s.decode_ms = r.timing_ms.decode;
                    s.total_ms = r.timing_ms.total;
                    s.wall_ms = r.wall_ms;
                    const std::string line = eval_sample_to_json(s) + "\n";
                    FILE* f = files[c.file];
                    if (std::fwrite(line.data(), 1, line.size(), f) != line.size() || std::fflush(f) != 0)
                        throw Error(str_cat((fs::path(a.out_dir) / c.file).string(), ": cannot write"));
                    answered[c.file].insert(q->index);
                    done[c.file].push_back(std::move(s));
                    progress.step(++computed);
                }
            }
            if (g_stop) break;
        }
    } catch (...) {
        close_all();
        throw;
    }
    close_all();
    stopped = g_stop;

    // Samples in question-file order, so that runs (and merged shards) compare line by line.
    std::vector<EvalSample> everything;
    for (const Config& c : configs) {
        write_atomic((fs::path(a.out_dir) / c.file).string(), samples_text(done[c.file]));
        everything.insert(everything.end(), done[c.file].begin(), done[c.file].end());
    }
    write_results(a.out_dir, eval_metrics(everything), config_json);
    if (stopped) {
        progress.finish_line();
        std::fprintf(stderr, "eval: interrupted after %d of %d answers; samples and results in %s (continue with --resume)\n",
                     computed, pending, a.out_dir.c_str());
        return 130;
    }
    std::fprintf(stderr, "eval: wrote %s/results.json, results.csv, results.md\n", a.out_dir.c_str());
    return 0;
}

int run_eval_merge(const std::vector<std::string>& dirs, const std::string& out_dir) {
    if (dirs.empty()) throw Error("eval-merge: give the shard directories");
    if (out_dir.empty()) throw Error("eval-merge: give --out DIR");
    std::error_code ec;
    std::string config_json;
    std::string config_from;
    long expected_questions = -1;  // from results.json's config, to flag a missing shard
    std::map<std::string, std::map<int, EvalSample>> merged;  // file -> index -> sample
    std::map<std::string, std::map<int, std::string>> origin;  // where each sample came from
    for (const std::string& dir : dirs) {
        if (!fs::is_directory(dir, ec)) throw Error(str_cat(dir, ": not a directory"));
        if (fs::exists(out_dir) && fs::equivalent(dir, out_dir, ec))
            throw Error(str_cat("eval-merge: --out ", out_dir, " is one of the inputs"));
        const std::string results = (fs::path(dir) / "results.json").string();
        if (fs::exists(results)) {
            ojson j;
            try {
                j = ojson::parse(read_all(results));
            } catch (const std::exception& e) {
                throw Error(str_cat(results, ": invalid JSON: ", e.what()));
            }
            const std::string c = j.contains("config") ? j["config"].dump() : "{}";
            if (config_from.empty()) {
                config_json = c;
                config_from = results;
                if (j.contains("config") && j["config"].contains("num_questions") &&
                    j["config"]["num_questions"].is_number_integer())
                    expected_questions = j["config"]["num_questions"].get<long>();
            } else if (nlohmann::json::parse(config_json) != nlohmann::json::parse(c)) {
                throw Error(str_cat(results, ": configuration differs from ", config_from, " (different runs?)"));
            }
        }
        const std::vector<std::string> files = samples_files_in(dir, "samples_");
        if (files.empty()) throw Error(str_cat(dir, ": no samples_*.jsonl files"));
        for (const std::string& name : files) {
            const std::string path = (fs::path(dir) / name).string();
            for (EvalSample& s : read_samples(path, false)) {
                auto& slot = merged[name];
                auto it = slot.find(s.index);
                if (it != slot.end()) {
                    if (it->second.answer != s.answer || it->second.question_id != s.question_id)
                        throw Error(str_cat(path, ": question index ", s.index, " also answered, differently, in ",
                                            origin[name][s.index]));
                    continue;
                }
                origin[name][s.index] = path;
                slot.emplace(s.index, std::move(s));
            }
        }
    }
    fs::create_directories(out_dir, ec);
    if (!fs::is_directory(out_dir)) throw Error(str_cat(out_dir, ": cannot create the directory"));
    for (const std::string& stale : samples_files_in(out_dir, "samples_")) fs::remove(fs::path(out_dir) / stale);
    std::vector<EvalSample> everything;
    size_t count = 0;
    for (const auto& [name, by_index] : merged) {
        std::vector<EvalSample> samples;
        for (const auto& [index, s] : by_index) samples.push_back(s);
        write_atomic((fs::path(out_dir) / name).string(), samples_text(samples));
        if (expected_questions >= 0 && long(samples.size()) != expected_questions)
            std::fprintf(stderr, "eval-merge: warning: %s has %zu of %ld questions (a shard missing or unfinished?)\n",
                         name.c_str(), samples.size(), expected_questions);
        everything.insert(everything.end(), samples.begin(), samples.end());
        count += samples.size();
    }
    write_results(out_dir, eval_metrics(everything), config_json);
    std::fprintf(stderr, "eval-merge: %zu samples from %zu directories into %s\n", count, dirs.size(), out_dir.c_str());
    return 0;
}

}  // namespace dl
