// Word diff and CHAIR-style hallucination analysis (see answer_analysis.h).
#include "ui/answer_analysis.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>

namespace dlui {

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

const std::map<std::string, std::string>& object_map() {
    static const std::map<std::string, std::string> m = [] {
        std::map<std::string, std::string> out;
        for (const char* row : k_object_table) {
            std::string s(row), canonical;
            size_t start = 0;
            while (start <= s.size()) {
                size_t bar = s.find('|', start);
                if (bar == std::string::npos) bar = s.size();
                std::string name = s.substr(start, bar - start);
                if (canonical.empty()) canonical = name;
                out.emplace(name, canonical);
                start = bar + 1;
            }
        }
        return out;
    }();
    return m;
}

const std::map<std::string, std::string>& irregular_plurals() {
    static const std::map<std::string, std::string> m = {
        {"people", "person"}, {"men", "man"}, {"women", "woman"}, {"children", "child"},
        {"mice", "mouse"}, {"knives", "knife"}, {"geese", "goose"}, {"oxen", "ox"},
        {"calves", "calf"}, {"teeth", "tooth"}, {"feet", "foot"}, {"sheep", "sheep"},
        {"gentlemen", "gentleman"}, {"ladies", "lady"}, {"buses", "bus"}, {"busses", "bus"},
        {"scissors", "scissors"}, {"skis", "skis"}, {"cattle", "cattle"},
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

std::string normalise(const std::string& token) {
    size_t b = 0, e = token.size();
    auto is_word_char = [](char c) { return std::isalnum((unsigned char)c) || (unsigned char)c >= 0x80; };
    while (b < e && !is_word_char(token[b])) ++b;
    while (e > b && !is_word_char(token[e - 1])) --e;
    std::string s = to_lower(token.substr(b, e - b));
    if (ends_with(s, "'s")) s.resize(s.size() - 2);  // possessive: "dog's" -> "dog"
    return s;
}

// Last word of a phrase, for plural handling of "traffic lights".
std::string lookup_with_plurals(const std::string& phrase) {
    const auto& m = object_map();
    auto it = m.find(phrase);
    if (it != m.end()) return it->second;
    size_t space = phrase.rfind(' ');
    std::string head = space == std::string::npos ? "" : phrase.substr(0, space + 1);
    std::string last = space == std::string::npos ? phrase : phrase.substr(space + 1);
    for (const std::string& cand : singular_candidates(last)) {
        it = m.find(head + cand);
        if (it != m.end()) return it->second;
    }
    return "";
}

}  // namespace

std::vector<Word> split_words(const std::string& text) {
    std::vector<Word> words;
    std::istringstream is(text);
    std::string tok;
    while (is >> tok) words.push_back({tok, normalise(tok)});
    return words;
}

std::vector<DiffPiece> word_diff(const std::vector<Word>& reference, const std::vector<Word>& other) {
    const size_t n = reference.size(), m = other.size();
    // lcs[i][j] = LCS length of reference[i..] and other[j..]
    std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));
    for (size_t i = n; i-- > 0;)
        for (size_t j = m; j-- > 0;)
            lcs[i][j] = reference[i].norm == other[j].norm ? lcs[i + 1][j + 1] + 1
                                                           : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    std::vector<DiffPiece> out;
    size_t i = 0, j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && reference[i].norm == other[j].norm) {
            out.push_back({DiffOp::same, int(j)});
            ++i, ++j;
        } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
            out.push_back({DiffOp::removed, int(i)});
            ++i;
        } else {
            out.push_back({DiffOp::added, int(j)});
            ++j;
        }
    }
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

std::string canonical_object(const std::string& norm) {
    if (norm.empty()) return "";
    return lookup_with_plurals(norm);
}

std::set<std::string> parse_object_tags(const std::string& tags) {
    std::set<std::string> out;
    std::string cur;
    auto flush = [&] {
        // collapse internal whitespace, normalise each word
        std::istringstream is(cur);
        std::string w, phrase;
        while (is >> w) {
            std::string n = normalise(w);
            if (n.empty()) continue;
            phrase += (phrase.empty() ? "" : " ") + n;
        }
        cur.clear();
        if (phrase.empty()) return;
        std::string canon = canonical_object(phrase);
        if (!canon.empty()) {
            out.insert(canon);
            return;
        }
        out.insert(phrase);  // not an object word: never matches a mention, kept for display
    };
    for (char ch : tags) {
        if (ch == ',' || ch == ';' || ch == '\n') flush();
        else cur += ch;
    }
    flush();
    return out;
}

std::vector<ObjectMention> find_object_mentions(const std::vector<Word>& words) {
    std::vector<ObjectMention> out;
    for (size_t i = 0; i < words.size(); ++i) {
        if (words[i].norm.empty()) continue;
        // two-word phrases first ("hot dog" is not a dog)
        if (i + 1 < words.size() && !words[i + 1].norm.empty()) {
            std::string canon = canonical_object(words[i].norm + " " + words[i + 1].norm);
            if (!canon.empty()) {
                out.push_back({int(i), 2, canon, false});
                ++i;
                continue;
            }
        }
        std::string canon = canonical_object(words[i].norm);
        if (!canon.empty()) out.push_back({int(i), 1, canon, false});
    }
    return out;
}

double AnswerAnalysis::chair() const {
    if (!truth_given || object_mentions == 0) return -1;
    return double(hallucinated_mentions) / double(object_mentions);
}

AnswerAnalysis analyse_answer(const std::string& answer, const std::string& reference,
                              const std::set<std::string>& truth_objects, bool is_reference) {
    AnswerAnalysis a;
    a.words = split_words(answer);
    a.truth_given = !truth_objects.empty();
    a.mentions = find_object_mentions(a.words);
    for (ObjectMention& m : a.mentions) {
        m.hallucinated = a.truth_given && truth_objects.count(m.object) == 0;
        a.object_mentions += 1;
        a.hallucinated_mentions += m.hallucinated ? 1 : 0;
    }
    if (is_reference) return a;
    a.reference_words = split_words(reference);
    a.diff = word_diff(a.reference_words, a.words);
    for (const DiffPiece& p : a.diff) a.changed_words += p.op == DiffOp::same ? 0 : 1;
    std::set<std::string> mine, theirs;
    for (const ObjectMention& m : a.mentions) mine.insert(m.object);
    for (const ObjectMention& m : find_object_mentions(a.reference_words)) theirs.insert(m.object);
    for (const std::string& o : theirs)
        if (!mine.count(o)) a.lost_objects.push_back(o);
    return a;
}

std::string html_escape(const std::string& text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string answer_html(const AnswerAnalysis& a) {
    // word index -> mention, for hallucination marks on the answer's own words
    std::vector<const ObjectMention*> mention_at(a.words.size(), nullptr);
    for (const ObjectMention& m : a.mentions)
        for (int k = 0; k < m.length; ++k) mention_at[size_t(m.word + k)] = &m;

    auto own_word = [&](int j, bool added) {
        std::string w = html_escape(a.words[size_t(j)].text);
        const ObjectMention* m = mention_at[size_t(j)];
        if (m && m->hallucinated)
            w = "<span style=\"color:#c00000; text-decoration:underline;\" title=\"hallucinated: " +
                html_escape(m->object) + "\"><b>" + w + "</b></span>";
        if (added) w = "<span style=\"background-color:#fff0a0;\">" + w + "</span>";
        return w;
    };
    std::string body;
    auto sep = [&] { if (!body.empty()) body += ' '; };
    if (a.diff.empty() && a.reference_words.empty()) {
        for (size_t j = 0; j < a.words.size(); ++j) { sep(); body += own_word(int(j), false); }
    } else {
        for (const DiffPiece& p : a.diff) {
            sep();
            if (p.op == DiffOp::removed)
                body += "<span style=\"color:#888888; text-decoration:line-through;\">" +
                        html_escape(a.reference_words[size_t(p.index)].text) + "</span>";
            else
                body += own_word(p.index, p.op == DiffOp::added);
        }
    }
    std::ostringstream s;
    s << "<p>" << (body.empty() ? "<i>(empty answer)</i>" : body) << "</p><p style=\"color:#555555;\"><small>";
    s << "objects: " << a.object_mentions;
    if (a.truth_given) {
        char buf[64];
        const double c = a.chair();
        if (c >= 0) std::snprintf(buf, sizeof buf, "%.2f", c);
        else std::snprintf(buf, sizeof buf, "n/a");
        s << " &middot; hallucinated: " << a.hallucinated_mentions << " &middot; CHAIR<sub>i</sub> " << buf;
    }
    if (!a.reference_words.empty() || !a.diff.empty()) s << " &middot; words changed: " << a.changed_words;
    if (!a.lost_objects.empty()) {
        s << "<br/><span style=\"color:#b05000;\">lost vs unpruned: ";
        for (size_t i = 0; i < a.lost_objects.size(); ++i)
            s << (i ? ", " : "") << html_escape(a.lost_objects[i]);
        s << "</span>";
    }
    s << "</small></p>";
    return s.str();
}

}  // namespace dlui
