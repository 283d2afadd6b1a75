// Hugging Face tokenizer files for a ponder tokenizer, so that
//   transformers.AutoTokenizer.from_pretrained(EXPORT_DIR)
// loads it with only the `tokenizers` library (no sentencepiece needed) and gives the ids ponder
// gives: tokenizer.json describes the model (SentencePiece: the unigram pieces and scores with
// SentencePiece's whitespace handling; characters: one token per printable ASCII character), the
// specials are added tokens matched in text ("<s>", "</s>", "<pad>", "<inst>", "<resp>", and the
// condition symbols of a SentencePiece model), and bos is prepended as ponder's samples start
// with it. A prompt in ponder's layout (data/prepare.h) is then "<inst>" + instruction + "<resp>".
// Unlike ponder, which refuses them, characters outside the vocabulary become <unk>
// (SentencePiece) or are dropped (characters).
#pragma once

#include <nlohmann/json.hpp>

#include "data/tokenizer.h"

namespace ponder::data {

// tokenizer.json. A SentencePiece model other than unigram (ponder trains unigram ones) is a
// ValueError, as is a tokenizer of another kind.
nlohmann::json hf_tokenizer_json(const Tokenizer& tokenizer);
// tokenizer_config.json: tokenizer_class, the special tokens by name, model_max_length.
nlohmann::json hf_tokenizer_config(const Tokenizer& tokenizer, int64_t model_max_length);

}  // namespace ponder::data
