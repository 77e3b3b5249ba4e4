// Answer analysis for the side-by-side view: word diffs and object-hallucination flags.
//
// Pure C++ (no Qt), so it is unit-tested without widgets. A pruned method's answer is compared
// with the unpruned one word by word (longest common subsequence over normalised words), and
// object words are checked against a user-supplied list of objects really in the image, the way
// CHAIR (Rohrbach et al. 2018) does for captions: only words from a known object vocabulary
// (COCO's 80 classes plus synonyms and plurals) count as object mentions; a mention whose
// object is not in the list is hallucinated; CHAIR_i = hallucinated mentions / all mentions.
// Objects the unpruned answer named and a pruned answer no longer names are reported as lost.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "core/scenes/objects.h"

namespace dlui {

using dl::ObjectMention;
using dl::singular_candidates;
using dl::split_words;
using dl::Word;

enum class DiffOp { same, added, removed };
struct DiffPiece {
    DiffOp op = DiffOp::same;
    int index = 0;  // index into `other` for same/added, into `reference` for removed
};
// Word diff of `other` against `reference` (equality on norm), LCS-based, in reading order:
// removed reference words appear just before the other-words that replace them.
std::vector<DiffPiece> word_diff(const std::vector<Word>& reference, const std::vector<Word>& other);

// Canonical COCO object for a normalised word or two-word phrase ("puppies" -> "dog"), or "".
std::string canonical_object(const std::string& norm_word_or_phrase);
// Parses a free tag list ("dogs, frisbee; grass") into canonical objects of the vocabulary; a tag
// that is not in it is kept lower-cased (it can never match a mention: only vocabulary words are).
std::set<std::string> parse_object_tags(const std::string& tags,
                                        const dl::ObjectVocabulary& vocabulary = dl::ObjectVocabulary::coco());
// Objects mentioned in a text (canonical, with their positions).
std::vector<ObjectMention> find_object_mentions(const std::vector<Word>& words,
                                                const dl::ObjectVocabulary& vocabulary = dl::ObjectVocabulary::coco());

struct AnswerAnalysis {
    std::vector<Word> words;
    std::vector<Word> reference_words;
    std::vector<DiffPiece> diff;           // empty when the answer is the reference itself
    std::vector<ObjectMention> mentions;
    int object_mentions = 0;
    int hallucinated_mentions = 0;
    bool truth_given = false;              // without a tag list nothing can be judged
    std::vector<std::string> lost_objects; // named by the reference, missing here (sorted)
    int changed_words = 0;                 // added + removed words vs the reference
    double chair() const;                  // hallucinated / mentions, or -1 when undefined
};

// Analyses `answer` against the unpruned `reference` answer and the objects really present.
// is_reference: the answer is the unpruned one (no diff, no lost objects).
AnswerAnalysis analyse_answer(const std::string& answer, const std::string& reference,
                              const std::set<std::string>& truth_objects, bool is_reference,
                              const dl::ObjectVocabulary& vocabulary = dl::ObjectVocabulary::coco());


// HTML for a QTextBrowser: added words highlighted, removed words struck through, hallucinated
// objects red and underlined, followed by a one-line summary (CHAIR, lost objects).
std::string answer_html(const AnswerAnalysis& analysis);

std::string html_escape(const std::string& text);

}  // namespace dlui
