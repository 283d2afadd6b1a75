#include "data/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>

#include "data/data_test_util.h"
#include "io/errors.h"
#include "support/test_util.h"

namespace ponder::data {
namespace {

namespace fs = std::filesystem;
using ponder::testing::error_message;
using testing::has_substr;
using testing::TempDir;
using testing::tiny_corpus;

TEST(CharTokenizer, FixedVocabularyRoundTrip) {
  CharTokenizer tok;
  EXPECT_EQ(tok.vocab_size(), 100);
  EXPECT_EQ(tok.pad(), 0);
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_EQ(tok.eos(), 2);
  EXPECT_EQ(tok.inst(), 3);
  EXPECT_EQ(tok.resp(), 4);
  EXPECT_EQ(tok.encode(" A~"), (std::vector<int32_t>{5, 'A' - 32 + 5, 99}));
  const std::string text = "What is 12 + 30? {x: [1, 2]}";
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  EXPECT_EQ(tok.decode({1, 3, 'h' - 27, 4, 'i' - 27, 2, 0}), "hi");  // specials decode to nothing
  EXPECT_EQ(tok.encode_condition("math"), tok.encode("<|math|>"));
}

TEST(CharTokenizer, UnknownCharactersAndIdsAreNamed) {
  CharTokenizer tok;
  EXPECT_TRUE(has_substr(error_message<ValueError>([&] { tok.encode("ab\tc"); }), "byte 0x09 at offset 2"));
  EXPECT_TRUE(has_substr(error_message<ValueError>([&] { tok.encode("caf\xc3\xa9"); }), "byte 0xc3 at offset 3"));
  EXPECT_TRUE(has_substr(error_message<ValueError>([&] { tok.decode({5, 100}); }), "id 100 is outside the vocabulary"));
  EXPECT_THROW(tok.decode({-1}), ValueError);
}

TEST(CharTokenizer, SavesAndLoads) {
  TempDir dir;
  CharTokenizer().save(dir.path());
  std::unique_ptr<Tokenizer> loaded = load_tokenizer(dir.path());
  EXPECT_EQ(loaded->id(), CharTokenizer().id());
  EXPECT_EQ(loaded->encode("ok"), CharTokenizer().encode("ok"));
  std::ofstream(dir / "char_tokenizer.json") << "{\"type\": \"something else\"}";
  EXPECT_THROW(load_tokenizer(dir.path()), io::FormatError);
}

class SentencePiece : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    tokenizer_ = new SentencePieceTokenizer(train_sentencepiece(tiny_corpus(300), 64, *dir_ / "sp"));
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete dir_;
  }
  static TempDir* dir_;
  static SentencePieceTokenizer* tokenizer_;
};
TempDir* SentencePiece::dir_ = nullptr;
SentencePieceTokenizer* SentencePiece::tokenizer_ = nullptr;

TEST_F(SentencePiece, TrainsWithTheSpecialIds) {
  const Tokenizer& tok = *tokenizer_;
  EXPECT_GT(tok.vocab_size(), 20);
  EXPECT_LE(tok.vocab_size(), 64);
  EXPECT_EQ(tok.pad(), 0);
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_EQ(tok.eos(), 2);
  EXPECT_EQ(tok.inst(), 4);
  EXPECT_EQ(tok.resp(), 5);
  EXPECT_TRUE(fs::exists(*dir_ / "sp.model"));
  EXPECT_TRUE(has_substr(tok.id(), "sentencepiece:"));
}

TEST_F(SentencePiece, RoundTripsTextExactly) {
  const Tokenizer& tok = *tokenizer_;
  for (const std::string& line : tiny_corpus(20)) EXPECT_EQ(tok.decode(tok.encode(line)), line);
  const std::string spaced = "the cat\nsat  on 12+3=?";  // newlines and double spaces survive
  EXPECT_EQ(tok.decode(tok.encode(spaced)), spaced);
  // Digits are split, so numbers are read digit by digit.
  EXPECT_GE(tok.encode("1234").size(), 4u);
}

TEST_F(SentencePiece, TextCannotForgeControlSymbols) {
  const Tokenizer& tok = *tokenizer_;
  for (int32_t id : tok.encode("<inst> the <resp>")) {
    EXPECT_NE(id, tok.inst());
    EXPECT_NE(id, tok.resp());
  }
  EXPECT_EQ(tok.decode({tok.bos(), tok.inst(), tok.resp(), tok.eos()}), "");
  EXPECT_THROW(tok.decode({static_cast<int32_t>(tok.vocab_size())}), ValueError);
}

TEST_F(SentencePiece, SavesLoadsAndKeepsItsIdentity) {
  TempDir out;
  tokenizer_->save(out.path());
  std::unique_ptr<Tokenizer> loaded = load_tokenizer(out.path());
  EXPECT_EQ(loaded->id(), tokenizer_->id());
  EXPECT_EQ(loaded->encode("what is the sum"), tokenizer_->encode("what is the sum"));
  EXPECT_EQ(load_tokenizer(*dir_ / "sp.model")->id(), tokenizer_->id());
}

TEST_F(SentencePiece, ConditionsBecomeOneSymbolWhenTrainedSo) {
  TempDir out;
  size_t next = 0;
  const std::vector<std::string> corpus = tiny_corpus(300);
  TextSource texts = [&](std::string& text) {
    if (next == corpus.size()) return false;
    text = corpus[next++];
    return true;
  };
  SentencePieceTokenizer tok = train_sentencepiece(texts, {.vocab_size = 64, .conditions = {"math", "chat"}}, out / "c");
  ASSERT_EQ(tok.encode_condition("math").size(), 1u);
  EXPECT_EQ(tok.decode(tok.encode_condition("math")), "<|math|>");
  EXPECT_NE(tok.encode_condition("math"), tok.encode_condition("chat"));
  EXPECT_GT(tokenizer_->encode_condition("math").size(), 1u);  // no such symbol: spelled out
  EXPECT_THROW(train_sentencepiece(texts, {.vocab_size = 64, .conditions = {"a,b"}}, out / "d"), ValueError);
}

TEST(SentencePieceErrors, BadModelsAndTrainingFailures) {
  TempDir dir;
  std::ofstream(dir / "bad.model") << "not a protobuf";
  EXPECT_TRUE(has_substr(error_message<io::FormatError>([&] { SentencePieceTokenizer t(dir / "bad.model"); }),
                         "bad.model: not a SentencePiece model"));
  EXPECT_THROW(SentencePieceTokenizer(dir / "missing.model"), io::IoError);
  EXPECT_TRUE(has_substr(error_message<io::IoError>([&] { load_tokenizer(dir.path()); }),
                         "holds neither tokenizer.model nor char_tokenizer.json"));
  // Far more distinct characters than pieces.
  std::vector<std::string> wide;
  for (char c = 'a'; c <= 'z'; ++c) wide.push_back(std::string(3, c) + std::string(3, static_cast<char>(c - 32)));
  EXPECT_TRUE(has_substr(error_message<ValueError>([&] { train_sentencepiece(wide, 16, dir / "small"); }),
                         "train_sentencepiece:"));
  // An exception from the text source reaches the caller unchanged.
  TextSource failing = [](std::string&) -> bool { throw io::FormatError("data.jsonl:3: broken"); };
  EXPECT_TRUE(has_substr(error_message<io::FormatError>([&] { train_sentencepiece(failing, {.vocab_size = 64, .conditions = {}}, dir / "f"); }),
                         "data.jsonl:3: broken"));
}

}  // namespace
}  // namespace ponder::data
