#include "data/sentencepiece_model.h"

#include <cstdint>

#include "io/errors.h"

namespace ponder::data {
namespace {

constexpr uint64_t kUnigram = 1, kUserDefined = 4;

// One message's fields, in order.
class WireReader {
 public:
  explicit WireReader(std::string_view bytes) : bytes_(bytes) {}

  struct Field {
    uint64_t number = 0;
    uint64_t varint = 0;     // wire type 0
    std::string_view bytes;  // wire type 2
  };

  bool next(Field& f) {
    if (pos_ == bytes_.size()) return false;
    const uint64_t key = varint();
    f = {key >> 3, 0, {}};
    switch (key & 7) {
      case 0: f.varint = varint(); break;
      case 1: take(8); break;
      case 2: f.bytes = take(varint()); break;
      case 5: take(4); break;
      default: bad();
    }
    return true;
  }

 private:
  [[noreturn]] void bad() const { fail<io::FormatError>("SentencePiece model: malformed protobuf at byte ", pos_); }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64 && pos_ < bytes_.size(); shift += 7) {
      const auto byte = static_cast<uint8_t>(bytes_[pos_++]);
      value |= uint64_t(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
    bad();
  }

  std::string_view take(uint64_t n) {
    if (n > bytes_.size() - pos_) bad();
    const std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  std::string_view bytes_;
  size_t pos_ = 0;
};

// The varint of `field` in a message, or `otherwise` without one.
uint64_t varint_field(std::string_view message, uint64_t field, uint64_t otherwise) {
  WireReader reader(message);
  WireReader::Field f;
  while (reader.next(f))
    if (f.number == field) otherwise = f.varint;
  return otherwise;
}

}  // namespace

SentencePieceModelFacts read_sentencepiece_facts(std::string_view model_bytes) {
  SentencePieceModelFacts facts;
  WireReader reader(model_bytes);
  WireReader::Field f;
  while (reader.next(f)) {
    if (f.number == 1) facts.user_defined.push_back(varint_field(f.bytes, 3, 1) == kUserDefined);
    if (f.number == 2) facts.unigram = varint_field(f.bytes, 3, kUnigram) == kUnigram;
  }
  return facts;
}

}  // namespace ponder::data
