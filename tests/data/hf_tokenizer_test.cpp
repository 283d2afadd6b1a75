#include "data/hf_tokenizer.h"

#include <gtest/gtest.h>

#include "data/data_test_util.h"

namespace ponder::data {
namespace {

using json = nlohmann::json;
using testing::TempDir;
using testing::tiny_corpus;

// The added token with `content`, or null.
json added(const json& tokenizer, const std::string& content) {
  for (const json& t : tokenizer["added_tokens"])
    if (t["content"] == content) return t;
  return nullptr;
}

void expect_specials(const json& tokenizer, const Tokenizer& tok) {
  for (int32_t id : {tok.pad(), tok.bos(), tok.eos(), tok.inst(), tok.resp()}) {
    const json t = added(tokenizer, tok.piece(id));
    ASSERT_FALSE(t.is_null()) << tok.piece(id);
    EXPECT_EQ(t["id"], id);
    EXPECT_EQ(t["special"], true);
  }
  // Samples start with bos.
  const json& post = tokenizer["post_processor"];
  EXPECT_EQ(post["single"][0]["SpecialToken"]["id"], "<s>");
  EXPECT_EQ(post["special_tokens"]["<s>"]["ids"], json::array({tok.bos()}));
}

TEST(HfTokenizer, CharactersAreOneTokenEach) {
  CharTokenizer tok;
  const json j = hf_tokenizer_json(tok);
  EXPECT_EQ(j["model"]["type"], "BPE");
  EXPECT_TRUE(j["model"]["merges"].empty());
  ASSERT_EQ(j["model"]["vocab"].size(), 100u);
  for (char c = ' '; c <= '~'; ++c) EXPECT_EQ(j["model"]["vocab"][std::string(1, c)], tok.encode(std::string(1, c))[0]) << c;
  EXPECT_EQ(j["model"]["vocab"]["<inst>"], tok.inst());
  EXPECT_EQ(j["decoder"]["type"], "Fuse");  // characters join without spaces
  expect_specials(j, tok);
  EXPECT_EQ(j["added_tokens"].size(), 5u);

  const json config = hf_tokenizer_config(tok, 256);
  EXPECT_EQ(config["tokenizer_class"], "PreTrainedTokenizerFast");
  EXPECT_EQ(config["bos_token"], "<s>");
  EXPECT_EQ(config["eos_token"], "</s>");
  EXPECT_EQ(config["pad_token"], "<pad>");
  EXPECT_EQ(config["additional_special_tokens"], json::array({"<inst>", "<resp>"}));
  EXPECT_EQ(config["model_max_length"], 256);
  EXPECT_FALSE(config.contains("unk_token"));
}

TEST(HfTokenizer, SentencePieceIsItsUnigramModel) {
  TempDir dir;
  std::vector<std::string> texts = tiny_corpus(300);
  SentencePieceTokenizer tok = train_sentencepiece(
      [&, next = size_t(0)](std::string& text) mutable {
        if (next == texts.size()) return false;
        text = texts[next++];
        return true;
      },
      {.vocab_size = 64, .conditions = {"math"}}, dir / "sp");
  const json j = hf_tokenizer_json(tok);
  EXPECT_EQ(j["model"]["type"], "Unigram");
  EXPECT_EQ(j["model"]["unk_id"], tok.unk());
  ASSERT_EQ(static_cast<int64_t>(j["model"]["vocab"].size()), tok.vocab_size());
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    EXPECT_EQ(j["model"]["vocab"][id][0], tok.piece(id));
    EXPECT_FLOAT_EQ(j["model"]["vocab"][id][1].get<float>(), tok.score(id));
  }
  // Whitespace as SentencePiece writes it: a dummy prefix, spaces as U+2581.
  EXPECT_EQ(j["normalizer"]["normalizers"][0]["prepend"], "\u2581");
  EXPECT_EQ(j["normalizer"]["normalizers"][1]["content"], "\u2581");
  expect_specials(j, tok);
  const json unk = added(j, tok.piece(tok.unk()));
  ASSERT_FALSE(unk.is_null());
  EXPECT_EQ(unk["special"], true);
  // A condition symbol is matched whole, as ponder encodes it, and kept when decoding.
  const json math = added(j, "<|math|>");
  ASSERT_FALSE(math.is_null());
  EXPECT_EQ(math["id"], tok.encode_condition("math")[0]);
  EXPECT_EQ(math["special"], false);
  EXPECT_EQ(j["added_tokens"].size(), 7u) << "pad, bos, eos, unk, inst, resp and the one condition";
  EXPECT_EQ(hf_tokenizer_config(tok, 64)["unk_token"], tok.piece(tok.unk()));
}

}  // namespace
}  // namespace ponder::data
