// Object words in free text (see objects.h).
#include "core/scenes/objects.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "core/common.h"

namespace dl {

namespace {

// COCO's 80 object classes, each followed by synonyms that name the same kind of object.
// All entries are singular and lower-case; plurals are handled by singular_candidates.
const char* const k_object_table[] = {
    "person|people|man|woman|boy|girl|child|kid|baby|guy|lady|player|rider|skier|surfer|"
    "skateboarder|pedestrian|adult|toddler|teenager|gentleman|human|worker|athlete|passenger",
    "bicycle|bike|cycle",
    "car|automobile|sedan|taxi|suv|jeep|van|minivan",
    "motorcycle|motorbike|scooter|moped",
    "airplane|plane|aeroplane|jet|aircraft|airliner",
    "bus|coach|minibus",
    "train|locomotive|tram|streetcar|railcar",
    "truck|lorry|pickup",
    "boat|ship|sailboat|canoe|kayak|yacht|ferry|vessel",
    "traffic light|traffic signal|stoplight|stop light",
    "fire hydrant|hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird|pigeon|seagull|gull|duck|goose|parrot|sparrow|crow|eagle|owl|swan",
    "cat|kitten|kitty",
    "dog|puppy|pup|doggy|hound|poodle|terrier",
    "horse|pony|foal",
    "sheep|lamb|ram",
    "cow|cattle|bull|calf|ox",
    "elephant",
    "bear|grizzly",
    "zebra",
    "giraffe",
    "backpack|rucksack|knapsack",
    "umbrella|parasol",
    "handbag|purse|bag",
    "tie|necktie",
    "suitcase|luggage|briefcase",
    "frisbee",
    "skis|ski",
    "snowboard",
    "sports ball|ball|football|soccer ball|basketball|volleyball|baseball|tennis ball",
    "kite",
    "baseball bat|bat",
    "baseball glove|glove|mitt",
    "skateboard",
    "surfboard|surf board",
    "tennis racket|racket|racquet",
    "bottle",
    "wine glass|wineglass",
    "cup|mug",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich|burger|hamburger",
    "orange",
    "broccoli",
    "carrot",
    "hot dog|hotdog",
    "pizza",
    "donut|doughnut",
    "cake|cupcake",
    "chair|stool",
    "couch|sofa",
    "potted plant|plant|houseplant|flowerpot",
    "bed",
    "dining table|table|desk",
    "toilet",
    "tv|television|monitor|screen",
    "laptop|notebook computer|computer",
    "mouse",
    "remote|remote control|controller",
    "keyboard",
    "cell phone|phone|cellphone|smartphone|mobile phone",
    "microwave",
    "oven|stove",
    "toaster",
    "sink",
    "refrigerator|fridge",
    "book|novel",
    "clock",
    "vase",
    "scissors",
    "teddy bear|teddy|stuffed animal",
    "hair drier|hair dryer|hairdryer|blow dryer",
    "toothbrush",
};

// The scene world's 16 classes (core/scenes/scenes.h), with the words a describer might use for them.
const char* const k_scene_table[] = {
    "house|home|building|cottage|hut", "tree", "car|automobile|sedan", "boat|ship|sailboat|yacht",
    "sun", "cloud", "person|people|man|woman|boy|girl|child|human", "dog|puppy", "cat|kitten", "bird",
    "fish", "flower|blossom", "ball", "star", "umbrella|parasol", "cup|mug",
};

const std::map<std::string, std::string>& irregular_plurals() {
    static const std::map<std::string, std::string> m = {
        {"people", "person"}, {"men", "man"}, {"women", "woman"}, {"children", "child"},
        {"mice", "mouse"}, {"knives", "knife"}, {"geese", "goose"}, {"oxen", "ox"},
        {"calves", "calf"}, {"teeth", "tooth"}, {"feet", "foot"}, {"sheep", "sheep"},
        {"gentlemen", "gentleman"}, {"ladies", "lady"}, {"buses", "bus"}, {"busses", "bus"},
        {"scissors", "scissors"}, {"skis", "skis"}, {"cattle", "cattle"}, {"fish", "fish"},
    };
    return m;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string to_lower(std::string s) {
    for (char& c : s) c = char(std::tolower((unsigned char)c));
    return s;
}

std::vector<std::string> table_rows(const char* const* rows, size_t n) {
    return std::vector<std::string>(rows, rows + n);
}

}  // namespace

std::string normalise_word(const std::string& token) {
    size_t b = 0, e = token.size();
    auto is_word_char = [](char c) { return std::isalnum((unsigned char)c) || (unsigned char)c >= 0x80; };
    while (b < e && !is_word_char(token[b])) ++b;
    while (e > b && !is_word_char(token[e - 1])) --e;
    std::string s = to_lower(token.substr(b, e - b));
    if (ends_with(s, "'s")) s.resize(s.size() - 2);  // possessive: "dog's" -> "dog"
    return s;
}

std::vector<Word> split_words(const std::string& text) {
    std::vector<Word> out;
    std::istringstream is(text);
    std::string t;
    while (is >> t) out.push_back({t, normalise_word(t)});
    return out;
}

std::vector<std::string> singular_candidates(const std::string& w) {
    std::vector<std::string> c;
    auto irr = irregular_plurals().find(w);
    if (irr != irregular_plurals().end()) c.push_back(irr->second);
    if (ends_with(w, "ies") && w.size() > 4) c.push_back(w.substr(0, w.size() - 3) + "y");
    if (ends_with(w, "ves") && w.size() > 4) {
        c.push_back(w.substr(0, w.size() - 3) + "f");
        c.push_back(w.substr(0, w.size() - 3) + "fe");
    }
    if (ends_with(w, "es") && w.size() > 3) c.push_back(w.substr(0, w.size() - 2));
    if (ends_with(w, "s") && !ends_with(w, "ss") && w.size() > 2) c.push_back(w.substr(0, w.size() - 1));
    c.push_back(w);
    return c;
}

ObjectVocabulary ObjectVocabulary::from_rows(const std::vector<std::string>& rows, const std::string& name) {
    ObjectVocabulary v;
    v.name_ = name;
    for (const std::string& s : rows) {
        std::string canonical;
        size_t start = 0;
        while (start <= s.size()) {
            size_t bar = s.find('|', start);
            if (bar == std::string::npos) bar = s.size();
            std::string word = s.substr(start, bar - start);
            if (canonical.empty()) canonical = word;
            if (!word.empty()) v.map_.emplace(word, canonical);
            start = bar + 1;
        }
    }
    return v;
}

const ObjectVocabulary& ObjectVocabulary::coco() {
    static const ObjectVocabulary v =
        from_rows(table_rows(k_object_table, sizeof k_object_table / sizeof *k_object_table), "coco");
    return v;
}

const ObjectVocabulary& ObjectVocabulary::scenes() {
    static const ObjectVocabulary v =
        from_rows(table_rows(k_scene_table, sizeof k_scene_table / sizeof *k_scene_table), "scenes");
    return v;
}

const ObjectVocabulary& ObjectVocabulary::builtin(const std::string& name) {
    if (name == "coco") return coco();
    if (name == "scenes") return scenes();
    throw Error(str_cat("object vocabulary '", name, "': expected coco, scenes or a synonyms file"));
}

ObjectVocabulary ObjectVocabulary::from_synonyms_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(str_cat(path, ": cannot open synonyms file"));
    std::vector<std::string> rows;
    std::string line;
    int lineno = 0;
    while (std::getline(f, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        size_t first = line.find_first_not_of(" \t");
        if (first == std::string::npos || line[first] == '#') continue;
        std::string row;
        std::stringstream ss(line);
        std::string item;
        while (std::getline(ss, item, ',')) {
            std::string phrase;
            for (const Word& w : split_words(item))
                if (!w.norm.empty()) phrase += (phrase.empty() ? "" : " ") + w.norm;
            if (phrase.find('|') != std::string::npos)
                throw Error(str_cat(path, ":", lineno, ": '|' is not allowed in a synonym"));
            if (!phrase.empty()) row += (row.empty() ? "" : "|") + phrase;
        }
        if (row.empty()) throw Error(str_cat(path, ":", lineno, ": no object word on this line"));
        rows.push_back(row);
    }
    if (rows.empty()) throw Error(str_cat(path, ": no objects in synonyms file"));
    return from_rows(rows, path);
}

std::string ObjectVocabulary::canonical(const std::string& phrase) const {
    if (phrase.empty()) return "";
    auto it = map_.find(phrase);
    if (it != map_.end()) return it->second;
    size_t space = phrase.rfind(' ');
    std::string head = space == std::string::npos ? "" : phrase.substr(0, space + 1);
    std::string last = space == std::string::npos ? phrase : phrase.substr(space + 1);
    for (const std::string& cand : singular_candidates(last)) {
        it = map_.find(head + cand);
        if (it != map_.end()) return it->second;
    }
    return "";
}

std::vector<ObjectMention> ObjectVocabulary::mentions(const std::vector<Word>& words) const {
    std::vector<ObjectMention> out;
    for (size_t i = 0; i < words.size(); ++i) {
        if (words[i].norm.empty()) continue;
        // two-word phrases first ("hot dog" is not a dog)
        if (i + 1 < words.size() && !words[i + 1].norm.empty()) {
            std::string canon = canonical(words[i].norm + " " + words[i + 1].norm);
            if (!canon.empty()) {
                out.push_back({int(i), 2, canon, false});
                ++i;
                continue;
            }
        }
        std::string canon = canonical(words[i].norm);
        if (!canon.empty()) out.push_back({int(i), 1, canon, false});
    }
    return out;
}

std::set<std::string> ObjectVocabulary::objects_in(const std::string& text) const {
    std::set<std::string> out;
    for (const ObjectMention& m : mentions(split_words(text))) out.insert(m.object);
    return out;
}

std::set<std::string> ObjectVocabulary::parse_tags(const std::string& tags) const {
    std::set<std::string> out;
    std::string cur;
    auto flush = [&] {
        std::string phrase;
        for (const Word& w : split_words(cur))
            if (!w.norm.empty()) phrase += (phrase.empty() ? "" : " ") + w.norm;
        cur.clear();
        if (phrase.empty()) return;
        std::string canon = canonical(phrase);
        out.insert(canon.empty() ? phrase : canon);  // not an object word: kept for display
    };
    for (char ch : tags) {
        if (ch == ',' || ch == ';' || ch == '\n') flush();
        else cur += ch;
    }
    flush();
    return out;
}

std::vector<std::string> ObjectVocabulary::canonical_names() const {
    std::set<std::string> names;
    for (const auto& [word, canon] : map_) names.insert(canon);
    return {names.begin(), names.end()};
}

double SetScore::precision() const { return predicted == 0 ? 1.0 : double(true_positives) / predicted; }
double SetScore::recall() const { return actual == 0 ? 1.0 : double(true_positives) / actual; }
double SetScore::f1() const {
    if (predicted == 0 && actual == 0) return 1.0;
    const double denom = predicted + actual;
    return denom == 0 ? 0.0 : 2.0 * true_positives / denom;
}

SetScore score_sets(const std::set<std::string>& predicted, const std::set<std::string>& actual) {
    SetScore s;
    s.predicted = int(predicted.size());
    s.actual = int(actual.size());
    for (const std::string& p : predicted) s.true_positives += actual.count(p) ? 1 : 0;
    return s;
}

}  // namespace dl
