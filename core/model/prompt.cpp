// Prompt templates and tokenisation around the image placeholder (see prompt.h).
#include "core/model/prompt.h"

#include "core/common.h"
#include "core/io/tokenizer.h"

namespace dl {

namespace {

const char* kImagePlaceholder = "<image>";

struct PromptTemplate {
    const char* name;
    const char* before_image;   // text before "<image>"
    const char* after_question; // text after "<image>\n{question}"
};

// llava_v1: conv_vicuna_v1 of the LLaVA repository (sep " ", roles USER/ASSISTANT).
const PromptTemplate kTemplates[] = {
    {"llava_v1",
     "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
     "helpful, detailed, and polite answers to the human's questions. USER: ",
     " ASSISTANT:"},
    {"llava-hf", "USER: ", " ASSISTANT:"},
    // llava-hf/llava-v1.6-mistral-7b-hf's chat template: "[INST] <image>\\n{question} [/INST]"
    {"mistral", "[INST] ", " [/INST]"},
};

const PromptTemplate& find_template(const std::string& name) {
    std::string valid;
    for (const auto& t : kTemplates) {
        if (name == t.name) return t;
        valid += (valid.empty() ? "" : ", ") + std::string(t.name);
    }
    throw Error(str_cat("prompt: unknown template '", name, "' (valid: ", valid, ")"));
}

void check_question(const std::string& question) {
    if (question.find_first_not_of(" \t\n\r\f\v") == std::string::npos)
        throw Error("prompt: the question is empty");
}

}  // namespace

std::vector<std::string> prompt_template_names() {
    std::vector<std::string> names;
    for (const auto& t : kTemplates) names.push_back(t.name);
    return names;
}

std::string prompt_text(const std::string& question, const std::string& template_name) {
    const PromptTemplate& t = find_template(template_name);
    check_question(question);
    return str_cat(t.before_image, kImagePlaceholder, "\n", question, t.after_question);
}

PromptTokens build_prompt(const Tokenizer& tokenizer, const std::string& question,
                          const std::string& template_name, int image_token_id, int bos_id) {
    const PromptTemplate& t = find_template(template_name);
    check_question(question);
    if (image_token_id < 0) throw Error(str_cat("prompt: invalid image token id ", image_token_id));
    PromptTokens out;
    out.text = prompt_text(question, template_name);
    std::vector<int> before = tokenizer.encode(t.before_image);
    // The question is text: an "<image>" typed into it is not a second image.
    std::vector<int> after = tokenizer.encode(str_cat("\n", question, t.after_question));
    if (bos_id >= 0) out.ids.push_back(bos_id);
    out.ids.insert(out.ids.end(), before.begin(), before.end());
    out.ids.push_back(image_token_id);
    out.ids.insert(out.ids.end(), after.begin(), after.end());
    out.image_token_pos = find_image_token(out.ids, image_token_id);
    return out;
}

int find_image_token(const std::vector<int>& ids, int image_token_id) {
    int pos = -1, count = 0;
    for (size_t i = 0; i < ids.size(); ++i)
        if (ids[i] == image_token_id) {
            if (count == 0) pos = static_cast<int>(i);
            ++count;
        }
    if (count == 0) throw Error(str_cat("prompt: no image token (id ", image_token_id, ") in the prompt ids"));
    if (count > 1)
        throw Error(str_cat("prompt: ", count, " image tokens (id ", image_token_id, ") in the prompt ids; one is supported"));
    return pos;
}

}  // namespace dl
