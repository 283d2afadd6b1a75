#include "data/hf_tokenizer.h"

#include <algorithm>

#include "tensor/error.h"

namespace ponder::data {
namespace {

using json = nlohmann::json;

constexpr const char* kVisibleSpace = "\u2581";  // SentencePiece writes a space as U+2581

json added_token(int32_t id, const std::string& content, bool special) {
  return {{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},   {"normalized", false}, {"special", special}};
}

// Pieces matched whole in text before the model runs: the specials and SentencePiece's
// user-defined pieces (condition symbols, which ponder's own encoding also keeps whole).
json added_tokens(const Tokenizer& t, const SentencePieceTokenizer* sp) {
  std::vector<int32_t> specials = {t.pad(), t.bos(), t.eos(), t.inst(), t.resp()};
  if (sp) specials.push_back(sp->unk());
  std::sort(specials.begin(), specials.end());
  specials.erase(std::unique(specials.begin(), specials.end()), specials.end());  // pad may be eos
  std::vector<std::pair<int32_t, bool>> tokens;
  for (int32_t id : specials) tokens.emplace_back(id, true);
  for (int32_t id = 0; sp && id < t.vocab_size(); ++id)
    if (sp->is_user_defined(id)) tokens.emplace_back(id, false);
  std::sort(tokens.begin(), tokens.end());
  json out = json::array();
  for (const auto& [id, special] : tokens) out.push_back(added_token(id, t.piece(id), special));
  return out;
}

// bos, then the text (as every ponder sample starts).
json bos_template(const Tokenizer& t) {
  const std::string bos = t.piece(t.bos());
  const json bos_token = {{"SpecialToken", {{"id", bos}, {"type_id", 0}}}};
  auto sequence = [](const char* id, int type) { return json{{"Sequence", {{"id", id}, {"type_id", type}}}}; };
  return {{"type", "TemplateProcessing"},
          {"single", json::array({bos_token, sequence("A", 0)})},
          {"pair", json::array({bos_token, sequence("A", 0), sequence("B", 1)})},
          {"special_tokens", {{bos, {{"id", bos}, {"ids", json::array({t.bos()})}, {"tokens", json::array({bos})}}}}}};
}

// A unigram model over the pieces with SentencePiece's whitespace handling as ponder trains it
// (identity normalisation, a dummy prefix space, spaces kept).
void describe_sentencepiece(const SentencePieceTokenizer& sp, json& out) {
  json vocab = json::array();
  for (int32_t id = 0; id < sp.vocab_size(); ++id) vocab.push_back(json::array({sp.piece(id), sp.score(id)}));
  out["normalizer"] = {{"type", "Sequence"},
                       {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", kVisibleSpace}},
                                                    {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kVisibleSpace}}})}};
  out["model"] = {{"type", "Unigram"}, {"unk_id", sp.unk()}, {"vocab", vocab}, {"byte_fallback", false}};
  out["decoder"] = {{"type", "Sequence"},
                    {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", kVisibleSpace}}}, {"content", " "}},
                                              {{"type", "Fuse"}},
                                              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
}

// One token per character: a BPE model whose vocabulary is the characters, with no merges.
void describe_characters(const CharTokenizer& chars, json& out) {
  json vocab = json::object();
  for (int32_t id = 0; id < chars.vocab_size(); ++id) vocab[chars.piece(id)] = id;
  out["normalizer"] = nullptr;
  out["model"] = {{"type", "BPE"},         {"dropout", nullptr},   {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false},     {"byte_fallback", false}, {"vocab", vocab},
                  {"merges", json::array()}};
  out["decoder"] = {{"type", "Fuse"}};
}

}  // namespace

json hf_tokenizer_json(const Tokenizer& tokenizer) {
  const auto* sp = dynamic_cast<const SentencePieceTokenizer*>(&tokenizer);
  const auto* chars = dynamic_cast<const CharTokenizer*>(&tokenizer);
  PONDER_CHECK(sp || chars, ValueError, "no Hugging Face description for tokenizer ", tokenizer.id());
  PONDER_CHECK(!sp || sp->is_unigram(), ValueError, "no Hugging Face description for tokenizer ", tokenizer.id(),
               ": only unigram SentencePiece models (as ponder trains them) are described");
  json out = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}};
  out["added_tokens"] = added_tokens(tokenizer, sp);
  if (sp) describe_sentencepiece(*sp, out);
  else describe_characters(*chars, out);
  out["pre_tokenizer"] = nullptr;
  out["post_processor"] = bos_template(tokenizer);
  return out;
}

json hf_tokenizer_config(const Tokenizer& t, int64_t model_max_length) {
  json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                 {"bos_token", t.piece(t.bos())},
                 {"eos_token", t.piece(t.eos())},
                 {"pad_token", t.piece(t.pad())},
                 {"additional_special_tokens", json::array({t.piece(t.inst()), t.piece(t.resp())})},
                 {"model_max_length", model_max_length},
                 {"clean_up_tokenization_spaces", false}};
  if (const auto* sp = dynamic_cast<const SentencePieceTokenizer*>(&t)) config["unk_token"] = sp->piece(sp->unk());
  return config;
}

}  // namespace ponder::data
