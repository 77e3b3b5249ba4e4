// Word diff and CHAIR-style hallucination analysis (see answer_analysis.h).
#include "ui/answer_analysis.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace dlui {

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

std::string canonical_object(const std::string& norm) { return dl::ObjectVocabulary::coco().canonical(norm); }

std::set<std::string> parse_object_tags(const std::string& tags, const dl::ObjectVocabulary& vocabulary) {
    return vocabulary.parse_tags(tags);
}

std::vector<ObjectMention> find_object_mentions(const std::vector<Word>& words, const dl::ObjectVocabulary& vocabulary) {
    return vocabulary.mentions(words);
}

double AnswerAnalysis::chair() const {
    if (!truth_given || object_mentions == 0) return -1;
    return double(hallucinated_mentions) / double(object_mentions);
}

AnswerAnalysis analyse_answer(const std::string& answer, const std::string& reference,
                              const std::set<std::string>& truth_objects, bool is_reference,
                              const dl::ObjectVocabulary& vocabulary) {
    AnswerAnalysis a;
    a.words = split_words(answer);
    a.truth_given = !truth_objects.empty();
    a.mentions = vocabulary.mentions(a.words);
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
    for (const ObjectMention& m : vocabulary.mentions(a.reference_words)) theirs.insert(m.object);
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
