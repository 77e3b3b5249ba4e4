// Object words in free text: the vocabulary CHAIR (Rohrbach et al. 2018) uses to find object
// mentions in captions and answers, shared by the GUI's hallucination flags and `eval`.
//
// A vocabulary maps words and two-word phrases (singular, lower-case) to a canonical object name;
// plurals are recognised by simple rules plus irregulars ("puppies" -> "dog", "people" -> "person").
// Built in: "coco" (COCO's 80 classes with synonyms, for real photographs) and "scenes" (the 16
// classes of the scene world, core/scenes/scenes.h). A CHAIR synonyms file gives any other: one object per
// line, "canonical, synonym, synonym ..." (commas; '#' starts a comment line).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace dl {

// One whitespace-separated token of a text: `text` as written, `norm` lower-cased with the
// surrounding punctuation stripped ("Dog," -> "dog"). norm may be empty (a lone "-").
struct Word {
    std::string text;
    std::string norm;
};
std::vector<Word> split_words(const std::string& text);
std::string normalise_word(const std::string& token);

// Singular form by simple rules plus a few irregulars ("boxes" -> "box", "men" -> "man").
std::vector<std::string> singular_candidates(const std::string& word);

struct ObjectMention {
    int word = 0;        // first word index in split_words(text)
    int length = 1;      // 1 or 2 words
    std::string object;  // canonical
    bool hallucinated = false;
};

class ObjectVocabulary {
public:
    // Rows "canonical|synonym|synonym", all singular lower-case.
    static ObjectVocabulary from_rows(const std::vector<std::string>& rows, const std::string& name);
    static const ObjectVocabulary& coco();
    static const ObjectVocabulary& scenes();
    // "coco" | "scenes"; dl::Error listing both otherwise.
    static const ObjectVocabulary& builtin(const std::string& name);
    // CHAIR synonyms file; dl::Error naming the file and line when a line has no word.
    static ObjectVocabulary from_synonyms_file(const std::string& path);

    const std::string& name() const { return name_; }
    // Canonical object for a normalised word or two-word phrase, or "" when it is not an object word.
    std::string canonical(const std::string& norm_word_or_phrase) const;
    // Objects mentioned in a text, two-word phrases first ("hot dog" is not a dog).
    std::vector<ObjectMention> mentions(const std::vector<Word>& words) const;
    // The distinct canonical objects a text mentions.
    std::set<std::string> objects_in(const std::string& text) const;
    // A free tag list ("dogs, frisbee; grass") as canonical objects; a tag outside the vocabulary is
    // kept lower-cased (it never matches a mention: only vocabulary words are mentions).
    std::set<std::string> parse_tags(const std::string& tags) const;
    std::vector<std::string> canonical_names() const;

private:
    std::string name_;
    std::map<std::string, std::string> map_;  // word or phrase -> canonical
};

// Ground truth (defined in core/scenes/scenes.cpp) of a scene-world picture: true when the image's directory holds a scenes.jsonl
// with a line whose "image" is the image's file name; *classes then gets its distinct object
// classes in drawing order. False when there is no scenes.jsonl or it does not list the image;
// dl::Error naming the file and line when scenes.jsonl is malformed.
bool scene_truth_for_image(const std::string& image_path, std::vector<std::string>* classes);

// Precision, recall and F1 of a predicted object set against the true one (F1 = 1 when both are
// empty; precision = 1 when nothing is predicted).
struct SetScore {
    int true_positives = 0, predicted = 0, actual = 0;
    double precision() const;
    double recall() const;
    double f1() const;
};
SetScore score_sets(const std::set<std::string>& predicted, const std::set<std::string>& actual);

}  // namespace dl
