// Internal to src/data: facts of a SentencePiece model file that SentencePieceProcessor's API does
// not give, read from the protobuf wire format of sentencepiece_model.proto (ModelProto: 1 pieces,
// 2 trainer_spec; SentencePiece: 3 type; TrainerSpec: 3 model_type).
#pragma once

#include <string_view>
#include <vector>

namespace ponder::data {

struct SentencePieceModelFacts {
  bool unigram = true;             // TrainerSpec.model_type is UNIGRAM (1, the default)
  std::vector<bool> user_defined;  // per piece: SentencePiece.type is USER_DEFINED (4)
};

// io::FormatError for bytes that are not a well-formed message.
SentencePieceModelFacts read_sentencepiece_facts(std::string_view model_bytes);

}  // namespace ponder::data
