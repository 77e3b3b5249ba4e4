// Prompt templates and their token ids, as LLaVA-1.5 builds them (shared/specs/llava-hf.md).
//
// The prompt text holds one "<image>" placeholder. Its ids are [bos] + sp(text before <image>) +
// [image id] + sp(text after <image>), each text segment encoded separately by SentencePiece with
// its dummy prefix, exactly as LLaVA's tokenizer_image_token does. Nothing here hard-codes where
// the image token lands (35 for the 7B tokenizer and "llava_v1"): find_image_token finds it.
#pragma once

#include <string>
#include <vector>

namespace dl {

class Tokenizer;

struct PromptTokens {
    std::vector<int> ids;     // image placeholder not expanded (one image id)
    int image_token_pos = 0;  // index of the image id in `ids`
    std::string text;         // the prompt text with "<image>"
};

// "llava_v1" (default; original LLaVA-1.5 conversation) and "llava-hf" (llava-hf chat template).
std::vector<std::string> prompt_template_names();

// The prompt text for a template, e.g. "USER: <image>\nWhat is this? ASSISTANT:" for "llava-hf".
// dl::Error for an empty/whitespace-only question ("prompt: the question is empty") or an unknown
// template (the message lists the valid ones).
std::string prompt_text(const std::string& question, const std::string& template_name);

// Tokenises the template's prompt; image_token_id comes from config.json (image_token_index).
PromptTokens build_prompt(const Tokenizer& tokenizer, const std::string& question,
                          const std::string& template_name, int image_token_id, int bos_id);

// Position of the single image token in ids; dl::Error if there is none or more than one.
int find_image_token(const std::vector<int>& ids, int image_token_id);

}  // namespace dl
