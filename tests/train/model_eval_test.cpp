// ponder eval's core: reading held-out pairs, and scores at each test-time depth within the bands
// an untrained model must give (chance-level perplexity, no exact matches).
#include "train/model_eval.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "io/errors.h"
#include "support/python.h"
#include "support/test_util.h"
#include "train/family.h"
#include "train/held_out.h"

namespace ponder::train {
namespace {
namespace fs = std::filesystem;
using ponder::testing::error_message;

constexpr int64_t kContext = 64;  // the models' training row

InferenceModel untrained(const char* model_yaml) {
  const std::string recipe = std::string("model: ") + model_yaml +
                             "\ndata: {task: reverse, seq_len: 64}\ntrain: {steps: 1}\nbatch: {global_tokens: 128}\n";
  InferenceModel m;
  m.model = build_model(io::parse_recipe(recipe, "r.yaml").model, 7);
  m.model->train(false);
  m.tokenizer = std::make_unique<data::CharTokenizer>();
  m.context = kContext;
  return m;
}

const char* kBaseline = "{family: transformer, vocab_size: 100, dim: 32, layers: 1, heads: 2, ffn_hidden: 64}";
const char* kHrmText =
    "{family: hrm_text, vocab_size: 100, dim: 32, layers_per_stack: 1, heads: 2, ffn_hidden: 64, H_cycles: 2, L_cycles: 2}";

const char* kSst = "{family: sst, vocab_size: 100, dim: 32, layers: 2, heads: 2, ffn_hidden: 64, alpha_min: 0.3, "
                   "alpha_max: 0.9, deliberation_tol: 1.0e9}";

fs::path write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

// Eight short reverse pairs naming their task (short: an untrained model answers at full length).
fs::path reverse_pairs(const fs::path& dir) {
  std::string text;
  for (const char* digits : {"123", "4567", "890", "2468", "135", "9753", "024", "6821"}) {
    std::string reversed(digits);
    std::reverse(reversed.begin(), reversed.end());
    text += nlohmann::json{{"instruction", std::string("reverse:") + digits}, {"response", reversed}, {"task", "reverse"}}
                .dump() + "\n";
  }
  return write_file(dir / "pairs.jsonl", text);
}

TEST(ModelEval, AnUntrainedModelScoresAtChanceLevel) {
  const fs::path dir = ponder::testing::scratch_dir("model_eval_untrained");
  InferenceModel m = untrained(kBaseline);
  const data::CharTokenizer tok;
  const EvalSet set = read_eval_set(reverse_pairs(dir), tok, "", 0, m.context);
  const std::vector<DepthScore> scores = evaluate_depths(m, set, /*sweep=*/true, Device::cpu());
  ASSERT_EQ(scores.size(), 1u);  // the baseline has only its trained depth
  EXPECT_EQ(scores[0].depth, "trained");
  EXPECT_EQ(scores[0].compute, 1.0);
  EXPECT_GT(scores[0].perplexity, 100 / 4.0);  // about the vocabulary's 100 tokens
  EXPECT_LT(scores[0].perplexity, 100 * 4.0);
  EXPECT_NEAR(scores[0].perplexity, std::exp(scores[0].loss), 1e-9);
  ASSERT_TRUE(scores[0].exact_match.has_value());
  EXPECT_EQ(*scores[0].exact_match, 0.0);
  EXPECT_EQ(scores[0].answered, 8);
  fs::remove_all(dir);
}

TEST(ModelEval, HrmTextSweepsEveryDepthAndEndsAtTheTrainedOne) {
  const fs::path dir = ponder::testing::scratch_dir("model_eval_hrm");
  InferenceModel m = untrained(kHrmText);
  const data::CharTokenizer tok;
  const EvalSet set = read_eval_set(reverse_pairs(dir), tok, "", 4, m.context);
  const std::vector<DepthScore> trained = evaluate_depths(m, set, /*sweep=*/false, Device::cpu());
  const std::vector<DepthScore> sweep = evaluate_depths(m, set, /*sweep=*/true, Device::cpu());
  const std::vector<models::EvalDepth> depths = m.model->eval_depths();
  ASSERT_EQ(sweep.size(), depths.size());
  for (size_t i = 0; i < depths.size(); ++i) {
    EXPECT_EQ(sweep[i].depth, depths[i].label);
    EXPECT_EQ(sweep[i].compute, depths[i].compute);
    if (depths[i].label == "H2L2") {
      EXPECT_EQ(sweep[i].loss, trained[0].loss);  // the trained cycles
    } else {
      EXPECT_NE(sweep[i].loss, trained[0].loss) << depths[i].label;
    }
  }
  std::vector<data::Sample> samples;
  for (const EvalPair& p : set.pairs) samples.push_back(p.sample);
  EXPECT_EQ(response_loss(*m.model, samples, m.prompt_mask, Device::cpu()).mean(), trained[0].loss);  // back at the trained depth
  const std::string table = depth_table(sweep);
  EXPECT_NE(table.find("H1L1             0.33"), std::string::npos) << table;
  EXPECT_NE(table.find("0.0% (0/4)"), std::string::npos) << table;
  const nlohmann::json j = depth_json(sweep);
  EXPECT_EQ(j.size(), depths.size());
  EXPECT_EQ(j[0]["depth"], "H1L1");
  EXPECT_EQ(j[0]["exact_match"], 0.0);
  fs::remove_all(dir);
}

TEST(ModelEval, ReadsPairsWithTheirVerifiers) {
  const fs::path dir = ponder::testing::scratch_dir("model_eval_read");
  const data::CharTokenizer tok;
  const fs::path path = write_file(dir / "mixed.jsonl", R"({"instruction": "sort:321", "response": "123", "task": "sort"}

{"instruction": "reverse:12", "response": "21"}
{"text": "plain text"}
)");
  const EvalSet set = read_eval_set(path, tok, "reverse", 0, kContext);
  ASSERT_EQ(set.pairs.size(), 3u);
  EXPECT_EQ(set.pairs[0].instruction, "sort:321");
  EXPECT_EQ(set.pairs[0].reference, "123");
  ASSERT_NE(set.pairs[0].verifier, nullptr);
  EXPECT_EQ(set.pairs[0].verifier->name(), "sort");
  ASSERT_NE(set.pairs[1].verifier, nullptr);
  EXPECT_EQ(set.pairs[1].verifier->name(), "reverse");  // --task for pairs that name none
  EXPECT_TRUE(set.pairs[2].sample.instruction.empty());  // plain text: loss only
  EXPECT_EQ(read_eval_set(path, tok, "", 0, kContext).pairs[1].verifier, nullptr);  // exact string match
  EXPECT_EQ(read_eval_set(path, tok, "", 2, kContext).pairs.size(), 2u);

  auto message = [&](const std::string& text, const std::string& task = "") {
    return error_message<Error>([&] { read_eval_set(write_file(dir / "bad.jsonl", text), tok, task, 0, kContext); });
  };
  EXPECT_NE(message("{\"instruction\": \"a\", \"response\": \"b\", \"task\": \"sorting\"}\n")
                .find("bad.jsonl:1: unknown task \"sorting\""), std::string::npos);
  EXPECT_NE(message("{\"instruction\": \"a\", \"response\": \"b\", \"task\": 3}\n").find("bad.jsonl:1: \"task\" must be a string"),
            std::string::npos);
  EXPECT_NE(message("\n{\"instruction\": \"a\"\n").find("bad.jsonl:2: not valid JSON"), std::string::npos);
  EXPECT_NE(message("{\"instruction\": \"a\", \"reply\": \"b\"}\n").find("bad.jsonl:1: unknown field"), std::string::npos);
  EXPECT_NE(message("\n\n").find("bad.jsonl: holds no samples"), std::string::npos);
  EXPECT_NE(message("{\"text\": \"x\"}\n", "sudok").find("unknown task \"sudok\""), std::string::npos);
  EXPECT_NE(message("{\"text\": \"x\"}\n{\"text\": \"" + std::string(kContext, 'x') + "\"}\n")
                .find("bad.jsonl:2: the sample has 65 tokens, more than the 64 positions the model was trained on"),
            std::string::npos);
  EXPECT_NE(error_message<io::IoError>([&] { read_eval_set(dir / "none.jsonl", tok, "", 0, kContext); })
                .find("none.jsonl: no such file"), std::string::npos);
  fs::remove_all(dir);
}

// A prompt near the end of the context does not shorten the answers to the others: each may grow
// by the longest reference and two tokens (an untrained model takes them all) where it has room.
TEST(ModelEval, ALongPromptDoesNotShortenTheOtherAnswers) {
  const fs::path dir = ponder::testing::scratch_dir("model_eval_budget");
  InferenceModel m = untrained(kBaseline);
  const data::CharTokenizer tok;
  auto answer_to_first = [&](const std::string& second_instruction) {
    const std::string text = nlohmann::json{{"instruction", "reverse:123"}, {"response", "321"}}.dump() + "\n" +
                             nlohmann::json{{"instruction", second_instruction}, {"response", "12"}}.dump() + "\n";
    const EvalSet set = read_eval_set(write_file(dir / "pairs.jsonl", text), tok, "", 0, m.context);
    return evaluate_depths(m, set, /*sweep=*/false, Device::cpu())[0].answers[0].text;
  };
  const std::string beside_a_short_prompt = answer_to_first("reverse:21");
  EXPECT_GE(beside_a_short_prompt.size(), 5u);
  EXPECT_EQ(answer_to_first("reverse:" + std::string(kContext - 14, '1')), beside_a_short_prompt);
  fs::remove_all(dir);
}

// Each SST depth deliberates that many times unless the early stop settles first; the table and
// the JSON report the iterations each block really ran.
TEST(ModelEval, SstReportsTheDeliberationIterationsItRan) {
  const fs::path dir = ponder::testing::scratch_dir("model_eval_sst");
  InferenceModel m = untrained(kSst);  // a huge tolerance: every block settles at its second iteration
  const EvalSet set = read_eval_set(reverse_pairs(dir), data::CharTokenizer(), "", 2, m.context);
  const std::vector<DepthScore> sweep = evaluate_depths(m, set, /*sweep=*/true, Device::cpu());
  ASSERT_EQ(sweep.size(), 3u);
  EXPECT_TRUE(sweep[0].model_metrics.empty());  // depth 1 does not deliberate
  EXPECT_EQ(sweep[1].model_metrics.at("sst_deliberation_iters"), 2.0);
  EXPECT_EQ(sweep[2].model_metrics.at("sst_deliberation_iters"), 2.0);  // depth 4 stopped early
  EXPECT_EQ(sweep[2].loss, sweep[1].loss);
  EXPECT_NE(depth_table(sweep).find("4.00"), std::string::npos);
  EXPECT_NE(depth_table(sweep).find("sst_deliberation_iters=2\n"), std::string::npos) << depth_table(sweep);
  EXPECT_EQ(depth_json(sweep)[2]["model_metrics"]["sst_deliberation_iters"], 2.0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ponder::train
