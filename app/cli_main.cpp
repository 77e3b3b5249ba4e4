// dartlens-cli: a thin command-line client over the engine (core/api.h).
//
// Subcommands:
//   run         answer a question about an image, optionally with pruning or several methods
//   make-model  write a random-weight LLaVA in the exact llava-hf layout (tests, demo, benchmarks)
//   bench       llama-bench-style sweeps of methods, budgets and layers
//   tokenize    the prompt tokenizer alone: text -> ids (tests/hf compares it with Hugging Face's)
//   scenes      the scene world: seeded pictures with exact labels and POPE-style questions
//   eval        batch hallucination evaluation (POPE, scene questions) of methods x budgets
//   eval-merge  merge the output directories of `eval --shard I/N` runs into one
// Flags follow llama.cpp (-m DIR --image F -p TEXT -n N -t THREADS). Errors print one line to
// stderr and exit with status 1.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/api.h"
#include "core/analysis/bench.h"
#include "core/common.h"
#include "core/analysis/eval.h"
#include "core/render/export.h"
#include "core/model/make_model.h"
#include "core/io/npy.h"
#include "core/render/overlay.h"
#include "core/analysis/report.h"
#include "core/scenes/scenes.h"
#include "core/io/tokenizer.h"
#include "app/runtime_defaults.h"

#include <nlohmann/json.hpp>

namespace {

struct RunArgs {
    std::string model_dir, image, prompt, templ = "llava_v1", device = "auto", dtype = "auto";
    std::string preprocess = "auto", json_path, logits_path, pixels_path, export_dir, compare;
    int n_predict = 64, threads = 0;
    bool overwrite = false, no_cache = false;
    dl::PruneConfig prune;
};

void add_prune_flags(CLI::App* cmd, dl::PruneConfig& p) {
    cmd->add_option("--method", p.method, "none|dart|fastv|random")->default_val("none");
    cmd->add_option("--layer", p.layer, "pruning layer K (layers >= K see the pruned sequence)")->default_val(2);
    cmd->add_option("--keep", p.keep, "nominal image-token budget B");
    cmd->add_option("--ratio", p.ratio, "reduction ratio R in [0,1] (B = round(N*(1-R)))");
    cmd->add_option("--pivots-image", p.pivots_image, "DART image pivots")->default_val(4);
    cmd->add_option("--pivots-text", p.pivots_text, "DART text pivots")->default_val(4);
    cmd->add_option("--pivot-criterion", p.pivot_criterion,
                    "k-norm-max|k-norm-min|v-norm-max|v-norm-min|attn-max|attn-min|random")
        ->default_val("k-norm-max");
    cmd->add_option("--pivot-order", p.pivot_order, "reference|score")->default_val("reference");
    cmd->add_option("--fastv-score", p.fastv_score, "last|mean")->default_val("last");
    cmd->add_option("--dart-scores", p.dart_scores,
                    "compute (DART's norms/cosines in the model's dtype, as the reference) | f32")
        ->default_val("compute");
    cmd->add_option("--seed", p.seed, "seed for random pruning / random pivots")->default_val(0);
}

void write_text(const std::string& path, const std::string& text) {
    if (path == "-") {
        std::cout << text << "\n";
        return;
    }
    std::ofstream f(path, std::ios::binary);
    f << text << "\n";
    if (!f) throw dl::Error(dl::str_cat(path, ": cannot write"));
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

int cmd_run(const RunArgs& a) {
    dl::Session session;
    dl::LoadOptions lo;
    lo.device = a.device;
    lo.dtype = a.dtype;
    lo.threads = a.threads;
    const dl::ModelInfo info = session.load_model(a.model_dir, lo);

    dl::RunRequest req;
    req.image_path = a.image;
    req.question = a.prompt;
    req.template_name = a.templ;
    req.preprocess = a.preprocess;
    req.max_new_tokens = a.n_predict;
    const dl::PromptInfo prompt = session.prepare(req);

    std::vector<dl::PruneConfig> configs;
    if (a.compare.empty()) {
        configs.push_back(a.prune);
    } else {
        for (const std::string& m : split_list(a.compare)) {
            dl::PruneConfig c = a.prune;
            c.method = m;
            configs.push_back(c);
        }
    }
    for (const dl::PruneConfig& c : configs)
        if (c.method != "none" && c.keep < 0 && c.ratio < 0)
            throw dl::Error(dl::str_cat("--method ", c.method, ": give --keep B or --ratio R (without a budget ",
                                        "nothing would be pruned)"));
    std::vector<dl::MethodRun> runs;
    for (const dl::PruneConfig& c : configs) {
        runs.push_back(session.run(c, a.n_predict, {}, nullptr, !a.no_cache));
        const dl::MethodRun& r = runs.back();
        // With --json - stdout carries only the JSON; the answers then go to stderr.
        FILE* answers = a.json_path == "-" ? stderr : stdout;
        if (configs.size() > 1) std::fprintf(answers, "[%s] ", c.label().c_str());
        std::fprintf(answers, "%s\n", r.text.c_str());
        std::fflush(answers);
        std::fprintf(stderr,
                     "%s: kept %d/%d image tokens (budget %d) | vision %.1f ms, prefill %.1f ms, "
                     "decode %.1f ms (%zu tokens), total %.1f ms\n",
                     c.label().c_str(), r.pruning.kept_count, r.pruning.num_image_tokens, r.pruning.budget,
                     r.timing_ms.vision, r.timing_ms.prefill, r.timing_ms.decode, r.output_ids.size(),
                     r.timing_ms.total);
    }
    if (info.random_weights)
        std::fprintf(stderr, "note: %s has random weights (generated by make-model): answers are noise\n",
                     info.dir.c_str());
    const std::string report = dl::report_json(info, prompt, session.geometry(), runs, a.prompt);
    if (!a.json_path.empty()) write_text(a.json_path, report);
    if (!a.logits_path.empty()) {
        std::vector<float> logits = runs.front().prompt_logits;
        dl::npy_save(a.logits_path, at::from_blob(logits.data(), {int64_t(logits.size())}, at::kFloat));
    }
    if (!a.pixels_path.empty()) {
        std::vector<int64_t> shape;
        std::vector<float> pixels = session.pixel_values(&shape);
        dl::npy_save(a.pixels_path, at::from_blob(pixels.data(), shape, at::kFloat));
    }
    if (!a.export_dir.empty()) {
        dl::ExportRequest ex;
        ex.dir = a.export_dir;
        ex.overwrite = a.overwrite;
        ex.original = dl::load_image_for_display(a.image);
        ex.geometry = session.geometry();
        ex.runs = runs;
        ex.question = a.prompt;
        ex.report_json = report;
        for (const std::string& p : dl::export_all(ex)) std::fprintf(stderr, "wrote %s\n", p.c_str());
    }
    return 0;
}

struct TokenizeArgs {
    std::string model_dir, text, file;
    bool text_given = false, json = false, jsonl = false, no_bos = false;
};

// Whether Hugging Face's tokenizer would put BOS in front: tokenizer_config.json's add_bos_token
// (LlamaTokenizer's default, and llava-hf's value, is true).
bool tokenizer_adds_bos(const std::string& model_dir) {
    std::ifstream f(model_dir + "/tokenizer_config.json");
    if (!f) return true;
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(f);
    } catch (const std::exception& e) {
        throw dl::Error(dl::str_cat(model_dir, "/tokenizer_config.json: invalid JSON: ", e.what()));
    }
    if (j.is_object() && j.contains("add_bos_token") && j["add_bos_token"].is_boolean())
        return j["add_bos_token"].get<bool>();
    return true;
}

// Plain SentencePiece encoding of each text (added tokens such as "<image>" are not split out, as
// in the prompt's text segments), with BOS in front as HF's tokenizer(text).input_ids has it.
int cmd_tokenize(const TokenizeArgs& a) {
    const dl::Tokenizer tok = dl::Tokenizer::load(a.model_dir);
    const bool bos = !a.no_bos && tokenizer_adds_bos(a.model_dir) && tok.bos_id() >= 0;
    std::vector<std::string> texts;
    if (a.text_given) {
        texts.push_back(a.text);
    } else {
        std::ifstream f(a.file, std::ios::binary);
        if (!f) throw dl::Error(dl::str_cat(a.file, ": cannot open"));
        std::ostringstream ss;
        ss << f.rdbuf();
        if (!a.jsonl) {
            texts.push_back(ss.str());
        } else {
            std::istringstream lines(ss.str());
            std::string line;
            int n = 0;
            while (std::getline(lines, line)) {
                ++n;
                if (line.empty()) continue;
                nlohmann::json v;
                try {
                    v = nlohmann::json::parse(line);
                } catch (const std::exception& e) {
                    throw dl::Error(dl::str_cat(a.file, ":", n, ": invalid JSON: ", e.what()));
                }
                if (!v.is_string()) throw dl::Error(dl::str_cat(a.file, ":", n, ": expected a JSON string"));
                texts.push_back(v.get<std::string>());
            }
        }
    }
    for (const std::string& text : texts) {
        std::vector<int> ids;
        if (bos) ids.push_back(tok.bos_id());
        const std::vector<int> body = tok.encode(text);
        ids.insert(ids.end(), body.begin(), body.end());
        if (a.json || a.jsonl) {
            nlohmann::json pieces = nlohmann::json::array();
            for (int id : ids) pieces.push_back(tok.piece(id));
            nlohmann::json j = {{"ids", ids}, {"pieces", pieces}};
            std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        } else {
            for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
            std::cout << "\n";
        }
    }
    std::cout.flush();
    return 0;
}

}  // namespace

// The commands that run the model re-execute once with DartLens's runtime defaults
// (app/runtime_defaults.h); the others start once.
bool dl_app::runtime_defaults_wanted(char** argv) {
    if (!argv[0] || !argv[1]) return false;
    for (const char* c : {"run", "bench", "eval"})
        if (std::strcmp(argv[1], c) == 0) return true;
    return false;
}

int main(int argc, char** argv) {
    CLI::App app{"dartlens-cli: DART / FastV vision-token pruning on LLaVA-1.5 and LLaVA-NeXT (llava-hf checkpoints)"};
    app.require_subcommand(1);

    RunArgs ra;
    CLI::App* run = app.add_subcommand("run", "answer a question about an image");
    run->add_option("-m,--model", ra.model_dir, "llava-hf model directory")->required();
    run->add_option("--image", ra.image, "image file")->required();
    run->add_option("-p,--prompt", ra.prompt, "question about the image")->required();
    run->add_option("-n,--n-predict", ra.n_predict, "max new tokens")->default_val(64);
    run->add_option("--template", ra.templ, "llava_v1|llava-hf|mistral")->default_val("llava_v1");
    run->add_option("--preprocess", ra.preprocess, "auto|crop|pad|anyres (LLaVA-NeXT: anyres, what auto picks)")->default_val("auto");
    run->add_option("--device", ra.device, "auto|cpu|cuda|cuda:N")->default_val("auto");
    run->add_option("--dtype", ra.dtype, "auto|f32|bf16|f16")->default_val("auto");
    run->add_option("-t,--threads", ra.threads, "threads (0 = all cores)")->default_val(0);
    run->add_option("--json", ra.json_path, "write the JSON report to PATH (- for stdout)");
    run->add_option("--dump-logits", ra.logits_path, "write last-prompt-position logits as float32 .npy");
    run->add_option("--dump-pixels", ra.pixels_path, "write the preprocessed image [1,3,H,W] (LLaVA-NeXT: [1+tiles,3,S,S]) as float32 .npy");
    run->add_option("--compare", ra.compare, "comma list of methods sharing one prefix, e.g. dart,fastv,none");
    run->add_option("--export", ra.export_dir, "write overlays, composite, report.json, figures.csv to DIR");
    run->add_flag("--overwrite", ra.overwrite, "let --export replace existing files");
    run->add_flag("--no-prefix-cache", ra.no_cache, "recompute vision and every layer for each method");
    add_prune_flags(run, ra.prune);

    std::string mm_preset = "tiny", mm_out;
    uint64_t mm_seed = 0;
    CLI::App* mk = app.add_subcommand("make-model", "write a random-weight LLaVA in the llava-hf layout");
    mk->add_option("--preset", mm_preset, "model preset")->default_val("tiny");
    mk->add_option("--out", mm_out, "output directory (must not exist or be empty)")->required();
    mk->add_option("--seed", mm_seed, "random seed")->default_val(0);
    mk->add_flag_callback("--list", [] {
        for (const std::string& n : dl::make_model_preset_names()) std::printf("%s\n", n.c_str());
        std::exit(0);
    }, "list presets");

    dl::BenchArgs ba;
    CLI::App* bench = app.add_subcommand("bench", "benchmark methods, budgets and layers (llama-bench style)");
    bench->add_option("-m,--model", ba.model_dir, "llava-hf model directory");
    bench->add_option("--preset", ba.preset, "generate this make-model preset instead of -m");
    bench->add_option("--image", ba.image, "image file (default: the bundled sample)");
    bench->add_option("-p,--prompt", ba.prompt, "question");
    bench->add_option("--method", ba.methods, "comma list: none,dart,fastv,random")->default_val("none,dart,fastv");
    bench->add_option("--keep", ba.keep, "budgets: 64,128,192 or 64-192+64");
    bench->add_option("--ratio", ba.ratio, "reduction ratios: 0.667,0.778,0.889 (default 0.889)");
    bench->add_option("--layer", ba.layers, "pruning layers: 2 or 1-4")->default_val("2");
    bench->add_option("--pivots-image", ba.pivots_image, "DART image pivots list")->default_val("4");
    bench->add_option("-r,--repetitions", ba.reps, "timed repetitions per configuration")->default_val(3);
    bench->add_option("--warmup", ba.warmup, "untimed warm-up runs per configuration")->default_val(1);
    bench->add_option("-t,--threads", ba.threads, "threads (0 = all cores)")->default_val(0);
    bench->add_option("--device", ba.device, "auto|cpu|cuda|cuda:N")->default_val("auto");
    bench->add_option("--dtype", ba.dtype, "auto|f32|bf16|f16")->default_val("auto");
    bench->add_option("-n,--n-predict", ba.n_predict, "new tokens per run")->default_val(16);
    bench->add_option("-o,--output", ba.output, "md|csv|json|jsonl")->default_val("md");
    bench->add_option("--out", ba.out_path, "write the table to PATH instead of stdout");
    bench->add_option("--seed", ba.seed, "seed for --preset and random pruning")->default_val(0);
    bench->add_flag("!--no-gemm-peak", ba.gemm_peak, "skip the GEMM reference measurement");
    bench->add_flag("!--no-prefix-cache", ba.prefix_cache, "skip the prefix-cache re-run measurement");

    TokenizeArgs ta;
    CLI::App* tokenize = app.add_subcommand("tokenize", "print the token ids of a text (BOS first, as HF's tokenizer)");
    tokenize->add_option("-m,--model", ta.model_dir, "model directory (tokenizer.model and HF's added-token files)")
        ->required();
    CLI::Option* text_opt = tokenize->add_option("-p,--prompt", ta.text, "the text");
    CLI::Option* file_opt = tokenize->add_option("--file", ta.file, "read the text from a file (bytes as they are)");
    text_opt->excludes(file_opt);
    tokenize->add_flag("--jsonl", ta.jsonl, "--file holds one JSON string per line; one JSON object per line out");
    tokenize->add_flag("--json", ta.json, "print {\"ids\": [...], \"pieces\": [...]}");
    tokenize->add_flag("--no-bos", ta.no_bos, "omit BOS even when tokenizer_config.json's add_bos_token is true");

    dl::ScenesArgs sa;
    std::string scenes_size = "448x336";
    CLI::App* scenes = app.add_subcommand("scenes", "write seeded scenes with exact labels and questions (POPE et al.)");
    scenes->add_option("--count", sa.count, "number of scenes")->required();
    scenes->add_option("--seed", sa.seed, "set seed (scene i depends on it and i only)")->default_val(0);
    scenes->add_option("--out", sa.out_dir, "output directory (must be empty)")
        ->required();
    scenes->add_option("--size", scenes_size, "image size WIDTHxHEIGHT")->default_val("448x336");
    scenes->add_flag("--overwrite", sa.overwrite, "replace earlier outputs in a non-empty --out");
    scenes->add_flag("--masks", sa.masks, "also write scene_NNNNNN_mask.png: per pixel 1 + the index of the visible object, 0 background");

    dl::EvalArgs ea;
    CLI::App* eval = app.add_subcommand("eval", "answer a question file with every method and budget, and score it");
    eval->add_option("--task", ea.task, "pope | scenes (the scene world's questions_other.jsonl) | chair (captions)");
    eval->add_option("--questions", ea.questions, "question file (JSON lines)");
    eval->add_option("--images", ea.images, "image directory (default: the question file's directory)");
    eval->add_option("--annotations", ea.annotations,
                     "pope: directory of coco_pope_<category>.json labels, for files without labels; "
                     "chair: COCO-format instances file (e.g. instances_val2014.json, or a scene set's instances.json)");
    eval->add_option("--prompt", ea.prompt, "chair: the caption request (unless the --questions file has a text)")
        ->default_val(ea.prompt);
    eval->add_option("-m,--model", ea.model_dir, "llava-hf model directory");
    eval->add_option("--method", ea.methods, "comma list: none,dart,fastv,random")->default_val("none,dart,fastv");
    eval->add_option("--keep", ea.keep, "budgets: 64,128,192 or 64-192+64");
    eval->add_option("--ratio", ea.ratio, "reduction ratios: 0.667,0.778,0.889");
    eval->add_option("--layer", ea.layer, "pruning layer K")->default_val(2);
    eval->add_option("--seed", ea.seed, "seed for random pruning")->default_val(0);
    eval->add_option("--shard", ea.shard, "I/N: questions whose 0-based file index % N == I-1");
    eval->add_flag("--resume", ea.resume, "keep the samples already in --out and answer only the rest");
    eval->add_option("-n,--n-predict", ea.n_predict, "max new tokens per answer")->default_val(64);
    eval->add_option("--limit", ea.limit, "only the first N questions of the file (before --shard)");
    eval->add_option("--template", ea.template_name, "llava_v1|llava-hf|mistral")->default_val("llava_v1");
    eval->add_option("--preprocess", ea.preprocess, "auto|crop|pad|anyres")->default_val("auto");
    eval->add_option("--device", ea.device, "auto|cpu|cuda|cuda:N")->default_val("auto");
    eval->add_option("--dtype", ea.dtype, "auto|f32|bf16|f16")->default_val("auto");
    eval->add_option("-t,--threads", ea.threads, "threads (0 = all cores)")->default_val(0);
    eval->add_option("--vocabulary,--synonyms", ea.vocabulary,
                     "object words: scenes | coco | a CHAIR synonyms file (scenes describe: default scenes; chair: required)");
    eval->add_option("--out", ea.out_dir, "output directory: samples_*.jsonl, results.json/.csv/.md");

    std::vector<std::string> merge_dirs;
    std::string merge_out;
    CLI::App* eval_merge = app.add_subcommand("eval-merge", "merge `eval --shard` output directories into one");
    eval_merge->add_option("dirs", merge_dirs, "shard output directories");
    eval_merge->add_option("--out", merge_out, "merged output directory");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        if (run->parsed()) return cmd_run(ra);
        if (mk->parsed()) {
            dl::make_model(mm_preset, mm_out, mm_seed);
            std::printf("wrote %s (preset %s, seed %llu, random weights)\n", mm_out.c_str(), mm_preset.c_str(),
                        static_cast<unsigned long long>(mm_seed));
            return 0;
        }
        if (bench->parsed()) return dl::run_bench(ba);
        if (eval->parsed()) return dl::run_eval(ea);
        if (eval_merge->parsed()) return dl::run_eval_merge(merge_dirs, merge_out);
        if (scenes->parsed()) {
            dl::scene_parse_size(scenes_size, &sa.width, &sa.height);
            const std::vector<dl::Scene> written = dl::scenes_write(sa);
            size_t objects = 0;
            for (const dl::Scene& s : written) objects += s.objects.size();
            std::printf("wrote %zu scenes (%zu objects, %dx%d, seed %llu) to %s\n", written.size(), objects, sa.width,
                        sa.height, static_cast<unsigned long long>(sa.seed), sa.out_dir.c_str());
            return 0;
        }
        if (tokenize->parsed()) {
            ta.text_given = text_opt->count() > 0;
            if (!ta.text_given && file_opt->count() == 0) throw dl::Error("tokenize: give -p TEXT or --file F");
            if (ta.jsonl && ta.text_given) throw dl::Error("tokenize: --jsonl needs --file");
            return cmd_tokenize(ta);
        }
    } catch (const dl::Cancelled&) {
        std::fprintf(stderr, "error: cancelled\n");
        return 1;
    } catch (const std::exception& e) {
        // dl::user_message's summary: one line (LibTorch's messages carry a backtrace), with advice
        // where the cause is known (out of memory: bf16 or fewer tokens; a missing file: which).
        std::fprintf(stderr, "error: %s\n", dl::user_message(e).summary.c_str());
        return 1;
    }
    return 0;
}
