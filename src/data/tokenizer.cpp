#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "data/hash.h"
#include "data/sentencepiece_model.h"
#include "io/atomic_file.h"
#include "io/errors.h"

namespace ponder::data {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSentencePieceFile = "tokenizer.model";
constexpr const char* kCharFile = "char_tokenizer.json";
constexpr const char* kCharType = "ponder-char";
constexpr int32_t kFirstChar = 32, kLastChar = 126, kCharOffset = 5;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  PONDER_CHECK(in, io::IoError, path.string(), ": cannot be read (", std::strerror(errno), ")");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& path, const std::string& bytes) {
  io::AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

// "'a'" for a printable byte, "byte 0x0a" otherwise.
std::string describe_byte(unsigned char c) {
  char out[16];
  if (c >= kFirstChar && c <= kLastChar) std::snprintf(out, sizeof out, "'%c'", c);
  else std::snprintf(out, sizeof out, "byte 0x%02x", c);
  return out;
}

void check_id(int32_t id, int64_t vocab_size, const char* tokenizer) {
  PONDER_CHECK(id >= 0 && id < vocab_size, ValueError, tokenizer, ": id ", id, " is outside the vocabulary [0, ",
               vocab_size, ")");
}

}  // namespace

// ---- Tokenizer ----

std::string condition_piece(std::string_view condition) { return "<|" + std::string(condition) + "|>"; }

std::vector<int32_t> Tokenizer::encode_condition(std::string_view condition) const {
  return encode(condition_piece(condition));
}

bool Tokenizer::is_special(int32_t id) const {
  return id == special_.pad || id == special_.bos || id == special_.eos || id == special_.inst || id == special_.resp;
}

// ---- SentencePiece ----

struct SentencePieceTokenizer::Impl {
  sentencepiece::SentencePieceProcessor processor;
  std::string model_bytes;
  std::string id;
  SentencePieceModelFacts facts;
};

SentencePieceTokenizer::SentencePieceTokenizer(const fs::path& model_file) : impl_(std::make_unique<Impl>()) {
  impl_->model_bytes = read_file(model_file);
  const auto status = impl_->processor.LoadFromSerializedProto(impl_->model_bytes);
  PONDER_CHECK(status.ok(), io::FormatError, model_file.string(), ": not a SentencePiece model (", status.ToString(),
               ")");
  impl_->id = "sentencepiece:" + Fnv1a().add(impl_->model_bytes).hex();
  impl_->facts = read_sentencepiece_facts(impl_->model_bytes);
  const auto& sp = impl_->processor;
  auto piece = [&](const char* name) {
    const int id = sp.PieceToId(name);
    PONDER_CHECK(id != sp.unk_id() && sp.IdToPiece(id) == name, ValueError, model_file.string(),
                 ": the model has no ", name, " piece (train one with ponder's prepare)");
    return static_cast<int32_t>(id);
  };
  PONDER_CHECK(sp.bos_id() >= 0 && sp.eos_id() >= 0, ValueError, model_file.string(),
               ": the model has no bos or eos piece");
  special_.bos = sp.bos_id();
  special_.eos = sp.eos_id();
  special_.pad = sp.pad_id() >= 0 ? sp.pad_id() : sp.eos_id();  // pad positions are never predicted
  special_.inst = piece("<inst>");
  special_.resp = piece("<resp>");
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;
SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept = default;

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const auto status = impl_->processor.Encode(text, &ids);
  PONDER_CHECK(status.ok(), ValueError, "SentencePieceTokenizer: cannot encode (", status.ToString(), ")");
  return {ids.begin(), ids.end()};
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::vector<int> kept;
  for (int32_t id : ids) {
    check_id(id, vocab_size(), "SentencePieceTokenizer");
    if (!is_special(id)) kept.push_back(id);
  }
  std::string text;
  const auto status = impl_->processor.Decode(kept, &text);
  PONDER_CHECK(status.ok(), ValueError, "SentencePieceTokenizer: cannot decode (", status.ToString(), ")");
  return text;
}

std::string SentencePieceTokenizer::piece(int32_t id) const {
  check_id(id, vocab_size(), "SentencePieceTokenizer");
  return impl_->processor.IdToPiece(id);
}

float SentencePieceTokenizer::score(int32_t id) const {
  check_id(id, vocab_size(), "SentencePieceTokenizer");
  return impl_->processor.GetScore(id);
}

bool SentencePieceTokenizer::is_user_defined(int32_t id) const {
  check_id(id, vocab_size(), "SentencePieceTokenizer");
  return static_cast<size_t>(id) < impl_->facts.user_defined.size() && impl_->facts.user_defined[id];
}

bool SentencePieceTokenizer::is_unigram() const { return impl_->facts.unigram; }

int32_t SentencePieceTokenizer::unk() const { return impl_->processor.unk_id(); }

std::vector<int32_t> SentencePieceTokenizer::encode_condition(std::string_view condition) const {
  const std::string piece = condition_piece(condition);
  const int id = impl_->processor.PieceToId(piece);
  if (id != impl_->processor.unk_id()) return {id};
  return encode(piece);
}

int64_t SentencePieceTokenizer::vocab_size() const { return impl_->processor.GetPieceSize(); }

std::string SentencePieceTokenizer::id() const { return impl_->id; }

void SentencePieceTokenizer::save(const fs::path& dir) const {
  write_file(dir / kSentencePieceFile, impl_->model_bytes);
}

namespace {

// Feeds a TextSource to the SentencePiece trainer, keeping any exception it throws for later.
class SourceIterator : public sentencepiece::SentenceIterator {
 public:
  explicit SourceIterator(const TextSource& source) : source_(source) { Next(); }
  bool done() const override { return done_; }
  void Next() override {
    try {
      done_ = !source_(value_);
    } catch (...) {
      error_ = std::current_exception();
      done_ = true;
    }
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override {
    if (!error_) return {};
    return {sentencepiece::util::StatusCode::kInternal, "the training texts could not be read"};
  }
  const std::exception_ptr& error() const { return error_; }

 private:
  const TextSource& source_;
  std::string value_;
  bool done_ = false;
  std::exception_ptr error_;
};

}  // namespace

SentencePieceTokenizer train_sentencepiece(const TextSource& texts, const SentencePieceTraining& options,
                                           const fs::path& out_prefix) {
  PONDER_CHECK(options.vocab_size >= 8, ValueError, "train_sentencepiece: vocab_size must be at least 8, got ",
               options.vocab_size);
  std::string symbols;
  for (const std::string& c : options.conditions) {
    PONDER_CHECK(!c.empty() && c.find_first_of(", \t\r\n") == std::string::npos, ValueError,
                 "train_sentencepiece: condition \"", c, "\" must be non-empty without commas or whitespace");
    if (!symbols.empty()) symbols += ',';
    symbols += condition_piece(c);
  }
  std::unordered_map<std::string, std::string> args = {
      {"model_prefix", out_prefix.string()},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"model_type", "unigram"},
      {"pad_id", "0"}, {"bos_id", "1"}, {"eos_id", "2"}, {"unk_id", "3"},
      // Inserted by id only: no text can produce an instruction/response boundary.
      {"control_symbols", "<inst>,<resp>"},
      {"split_digits", "true"},
      // Text round-trips exactly: no Unicode normalisation, newlines and repeated spaces kept.
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"hard_vocab_limit", "false"},
      {"input_sentence_size", std::to_string(options.max_sentences)},
      {"shuffle_input_sentence", "true"},
      {"max_sentence_length", "65536"},
      {"minloglevel", "2"},
  };
  if (!symbols.empty()) args["user_defined_symbols"] = symbols;
  sentencepiece::SetRandomGeneratorSeed(options.seed);  // sentence sampling, so a corpus gives one model
  SourceIterator source(texts);
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &source);
  if (source.error()) std::rethrow_exception(source.error());
  PONDER_CHECK(status.ok(), ValueError, "train_sentencepiece: ", status.ToString());
  fs::path model = out_prefix;
  model += ".model";
  return SentencePieceTokenizer(model);
}

SentencePieceTokenizer train_sentencepiece(const std::vector<std::string>& texts, int64_t vocab_size,
                                           const fs::path& out_prefix) {
  size_t next = 0;
  TextSource source = [&](std::string& text) {
    if (next == texts.size()) return false;
    text = texts[next++];
    return true;
  };
  return train_sentencepiece(source, {.vocab_size = vocab_size, .conditions = {}}, out_prefix);
}

// ---- characters ----

std::vector<int32_t> CharTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    PONDER_CHECK(c >= kFirstChar && c <= kLastChar, ValueError, "CharTokenizer: ", describe_byte(c), " at offset ", i,
                 " is not in the vocabulary (printable ASCII only)");
    ids.push_back(c - kFirstChar + kCharOffset);
  }
  return ids;
}

std::string CharTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (int32_t id : ids) {
    check_id(id, vocab_size(), "CharTokenizer");
    if (id >= kCharOffset) text.push_back(static_cast<char>(id - kCharOffset + kFirstChar));
  }
  return text;
}

std::string CharTokenizer::piece(int32_t id) const {
  check_id(id, vocab_size(), "CharTokenizer");
  static const char* const kSpecialPieces[kCharOffset] = {"<pad>", "<s>", "</s>", "<inst>", "<resp>"};
  if (id < kCharOffset) return kSpecialPieces[id];
  return std::string(1, static_cast<char>(id - kCharOffset + kFirstChar));
}

void CharTokenizer::save(const fs::path& dir) const {
  write_file(dir / kCharFile, nlohmann::json{{"type", kCharType}, {"id", id()}}.dump(2) + "\n");
}

// ---- loading ----

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return std::make_unique<SentencePieceTokenizer>(path);
  if (fs::exists(path / kSentencePieceFile, ec)) return std::make_unique<SentencePieceTokenizer>(path / kSentencePieceFile);
  const fs::path char_file = path / kCharFile;
  PONDER_CHECK(fs::exists(char_file, ec), io::IoError, path.string(), ": holds neither ", kSentencePieceFile, " nor ",
               kCharFile);
  const nlohmann::json j = nlohmann::json::parse(read_file(char_file), nullptr, false);
  const bool is_char = j.is_object() && j.contains("type") && j["type"] == kCharType;
  PONDER_CHECK(is_char, io::FormatError, char_file.string(), ": not a ponder character tokenizer description");
  return std::make_unique<CharTokenizer>();
}

std::unique_ptr<Tokenizer> tokenizer_beside(const fs::path& shards) {
  std::error_code ec;
  const fs::path dir = fs::is_directory(shards, ec) ? shards : shards.parent_path();
  if (!fs::exists(dir / kSentencePieceFile, ec) && !fs::exists(dir / kCharFile, ec)) return nullptr;
  return load_tokenizer(dir);
}

}  // namespace ponder::data
