// Tokenizers: text <-> token ids, with the special ids the sample layout uses (see prepare.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ponder::data {

struct SpecialIds {
  int32_t pad = 0, bos = 1, eos = 2;
  int32_t inst = 3;  // opens the instruction text
  int32_t resp = 4;  // closes the instruction: the response follows
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // Special ids decode to nothing; ids outside the vocabulary are a ValueError.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // The vocabulary entry of one id (specials by name, e.g. "<s>"); ValueError outside the vocabulary.
  virtual std::string piece(int32_t id) const = 0;
  // The tokens of a condition prefix: the piece condition_piece(c) when the vocabulary has it as
  // one symbol, else its encoded text.
  virtual std::vector<int32_t> encode_condition(std::string_view condition) const;
  virtual int64_t vocab_size() const = 0;
  // A stable identity: equal ids mean the same ids for the same text (stored in shards).
  virtual std::string id() const = 0;
  // Writes the files an export ships into `dir` (which must exist); load_tokenizer(dir) reads them.
  virtual void save(const std::filesystem::path& dir) const = 0;

  const SpecialIds& special() const { return special_; }
  int32_t pad() const { return special_.pad; }
  int32_t bos() const { return special_.bos; }
  int32_t eos() const { return special_.eos; }
  int32_t inst() const { return special_.inst; }
  int32_t resp() const { return special_.resp; }
  bool is_special(int32_t id) const;

 protected:
  SpecialIds special_;
};

// The text of a condition's symbol, e.g. "math" -> "<|math|>".
std::string condition_piece(std::string_view condition);

// A SentencePiece model (.model file). Its pieces "<pad>" (or eos when the model has none),
// "<s>", "</s>", "<inst>" and "<resp>" are the special ids; a model without <inst>/<resp> is a
// ValueError (train one with train_sentencepiece).
class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::filesystem::path& model_file);
  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept;

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::string piece(int32_t id) const override;
  std::vector<int32_t> encode_condition(std::string_view condition) const override;
  int64_t vocab_size() const override;
  std::string id() const override;  // "sentencepiece:<FNV-1a 64 of the model file, hex>"
  void save(const std::filesystem::path& dir) const override;  // dir/tokenizer.model

  // What another implementation of the model needs: its kind (ponder trains unigram models),
  // each piece's score, which pieces are user-defined (matched in text as a whole: the condition
  // symbols), and the unknown piece.
  bool is_unigram() const;
  float score(int32_t id) const;
  bool is_user_defined(int32_t id) const;
  int32_t unk() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A fixed vocabulary for synthetic tasks: pad 0, bos 1, eos 2, inst 3, resp 4 (pieces "<pad>",
// "<s>", "</s>", "<inst>", "<resp>"), then the printable ASCII characters 32..126 as ids 5..99.
// Any other byte is a ValueError naming it.
class CharTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::string piece(int32_t id) const override;
  int64_t vocab_size() const override { return 5 + 95; }
  std::string id() const override { return "char:ascii32-126:v1"; }
  void save(const std::filesystem::path& dir) const override;  // dir/tokenizer.json
};

// Yields the training texts one at a time: sets `text` and returns true, or returns false at the end.
using TextSource = std::function<bool(std::string& text)>;

struct SentencePieceTraining {
  int64_t vocab_size = 0;
  std::vector<std::string> conditions;  // each becomes the single symbol condition_piece(c)
  // Sentences sampled for training when the corpus is larger (SentencePiece holds them in memory).
  int64_t max_sentences = 2'000'000;
  uint32_t seed = 0;  // for that sampling
};

// Trains a unigram SentencePiece model on the texts (specials pad 0, bos 1, eos 2, unk 3, then
// control symbols <inst> 4 and <resp> 5; digits split; a vocabulary the corpus cannot fill ends up
// smaller), writes out_prefix.model and out_prefix.vocab and loads the model. A failure of the
// trainer is a ValueError with its message; an exception thrown by `texts` propagates.
SentencePieceTokenizer train_sentencepiece(const TextSource& texts, const SentencePieceTraining& options,
                                           const std::filesystem::path& out_prefix);
SentencePieceTokenizer train_sentencepiece(const std::vector<std::string>& texts, int64_t vocab_size,
                                           const std::filesystem::path& out_prefix);

// Loads what Tokenizer::save wrote: `path` is such a directory, or a .model file directly.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path);

// The tokenizer saved beside shards (in `shards` when it is a directory, else in the directory
// holding it), or null when there is none there.
std::unique_ptr<Tokenizer> tokenizer_beside(const std::filesystem::path& shards);

}  // namespace ponder::data
