// Byte layouts: the HDF5 File Format Specification, version 3.0 (superblock §II.A, version 2
// object headers §IV.A.1.b, messages §IV.A.2). All integers are little-endian.
#include "data/hdf5_check.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "io/errors.h"

namespace ponder::data {

uint32_t hdf5_checksum(const uint8_t* k, size_t length) {
  auto rot = [](uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
  uint32_t a = 0xdeadbeef + static_cast<uint32_t>(length), b = a, c = a;
  auto word = [&](size_t at, size_t n) {  // up to 4 bytes from k[at], little-endian
    uint32_t w = 0;
    for (size_t i = 0; i < n; ++i) w |= uint32_t(k[at + i]) << (8 * i);
    return w;
  };
  while (length > 12) {
    a += word(0, 4), b += word(4, 4), c += word(8, 4);
    a -= c, a ^= rot(c, 4), c += b;
    b -= a, b ^= rot(a, 6), a += c;
    c -= b, c ^= rot(b, 8), b += a;
    a -= c, a ^= rot(c, 16), c += b;
    b -= a, b ^= rot(a, 19), a += c;
    c -= b, c ^= rot(b, 4), b += a;
    length -= 12, k += 12;
  }
  if (length == 0) return c;
  a += word(0, std::min<size_t>(length, 4));
  if (length > 4) b += word(4, std::min<size_t>(length - 4, 4));
  if (length > 8) c += word(8, length - 8);
  c ^= b, c -= rot(b, 14);
  a ^= c, a -= rot(c, 11);
  b ^= a, b -= rot(a, 25);
  c ^= b, c -= rot(b, 16);
  a ^= c, a -= rot(c, 4);
  b ^= a, b -= rot(a, 14);
  c ^= b, c -= rot(b, 24);
  return c;
}

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kUndefinedAddress = ~uint64_t(0);
constexpr size_t kSuperblockBytes = 48;  // version 2/3 with 8-byte offsets, checksum included
// ponder's object headers are a few hundred bytes; a larger chunk is corruption, refused before
// anything that size is allocated.
constexpr uint64_t kMaxChunkBytes = uint64_t(1) << 20;
constexpr int kMaxChunks = 256;   // object header chunks in the whole file
constexpr int kMaxObjects = 64;   // the root group and the objects it links to
constexpr uint64_t kMaxElements = uint64_t(1) << 62;  // keeps element counts and byte sizes from overflowing
constexpr uint32_t kMaxTypeBytes = 1 << 16;

constexpr std::array<uint8_t, 8> kSignature = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

enum Message : uint16_t {
  kNil = 0x00, kDataspace = 0x01, kLinkInfo = 0x02, kDatatype = 0x03, kFillValue = 0x05, kLink = 0x06,
  kLayout = 0x08, kGroupInfo = 0x0a, kAttribute = 0x0c, kContinuation = 0x10, kModificationTime = 0x12,
  kAttributeInfo = 0x15, kReferenceCount = 0x16,
};

std::string message_name(uint16_t type) {
  switch (type) {
    case kNil: return "null message";
    case kDataspace: return "dataspace message";
    case kLinkInfo: return "link info message";
    case kDatatype: return "datatype message";
    case kFillValue: return "fill value message";
    case kLink: return "link message";
    case kLayout: return "data layout message";
    case kGroupInfo: return "group info message";
    case kAttribute: return "attribute message";
    case kContinuation: return "continuation message";
    case kModificationTime: return "modification time message";
    case kAttributeInfo: return "attribute info message";
    case kReferenceCount: return "reference count message";
    default: return "message type " + std::to_string(type);
  }
}

// Refusals: a file whose structure is broken, or one ponder's writer does not produce.
class Refuse {
 public:
  explicit Refuse(const fs::path& path) : path_(path) {}
  template <class... Parts>
  [[noreturn]] void corrupt(const Parts&... parts) const {
    fail<io::FormatError>(path_.string(), ": corrupt HDF5 structure: ", parts...);
  }
  [[noreturn]] void not_hdf5() const { fail<io::FormatError>(path_.string(), ": not an HDF5 file"); }
  template <class... Parts>
  [[noreturn]] void unsupported(const Parts&... parts) const {
    fail<io::FormatError>(path_.string(), ": not a shard written by `ponder data prepare` (", parts..., ")");
  }

 private:
  const fs::path& path_;
};

// A bounded little-endian cursor: reading past its end refuses the file, naming `what`.
class Cursor {
 public:
  Cursor(const Refuse& refuse, const uint8_t* data, size_t size, std::string what)
      : refuse_(refuse), data_(data), size_(size), what_(std::move(what)) {}

  size_t left() const { return size_ - at_; }
  const std::string& what() const { return what_; }

  const uint8_t* take(uint64_t n) {
    if (n > left()) refuse_.corrupt(what_, " runs past its end (", n, " bytes needed at byte ", at_, " of ", size_, ")");
    const uint8_t* p = data_ + at_;
    at_ += n;
    return p;
  }
  uint64_t u(int bytes) {
    const uint8_t* p = take(bytes);
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(p[i]) << (8 * i);
    return v;
  }
  uint8_t u8() { return static_cast<uint8_t>(u(1)); }
  // The next n bytes as a cursor of their own.
  Cursor sub(uint64_t n, std::string what) { return Cursor(refuse_, take(n), n, std::move(what)); }

 private:
  const Refuse& refuse_;
  const uint8_t* data_;
  size_t size_, at_ = 0;
  std::string what_;
};

// What one object's messages say about its data, compared once all its chunks are read.
struct ObjectFacts {
  bool has_type = false, has_space = false, has_layout = false;
  uint64_t element_bytes = 0, elements = 0, stored_bytes = 0;
};

struct Link {
  std::string name;
  uint64_t address;
};

// Printable names only; anything else is described rather than echoed.
std::string quoted(const uint8_t* p, size_t n) {
  const std::string s(reinterpret_cast<const char*>(p), n);
  const bool printable = n <= 64 && std::all_of(s.begin(), s.end(), [](char ch) { return ch >= 0x20 && ch <= 0x7e; });
  return printable ? "\"" + s + "\"" : "(an unprintable name)";
}

class Checker {
 public:
  explicit Checker(const fs::path& path) : refuse_(path), in_(path, std::ios::binary) {
    std::error_code ec;
    file_bytes_ = fs::file_size(path, ec);
    if (ec || !in_) fail<io::IoError>(path.string(), ": cannot be read");
  }

  void run() {
    const uint64_t root = superblock();
    objects_.insert(root);
    std::vector<Link> links;
    object(root, "the root group", &links);
    if (links.size() >= size_t(kMaxObjects)) refuse_.unsupported(links.size(), " links in the root group");
    for (const Link& link : links) {
      if (!objects_.insert(link.address).second) continue;
      object(link.address, "object " + link.name, nullptr);
    }
  }

 private:
  // Bytes [offset, offset + n) of the file, after checking they lie inside it.
  std::vector<uint8_t> read(uint64_t offset, uint64_t n, const std::string& what) {
    if (offset > eof_ || n > eof_ - offset)
      refuse_.corrupt(what, " at byte ", offset, " (", n, " bytes) lies past the end of the file (", eof_, " bytes)");
    std::vector<uint8_t> bytes(n);
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(n));
    if (!in_) refuse_.corrupt(what, ": the file could not be read at byte ", offset);
    return bytes;
  }

  void check_checksum(const std::vector<uint8_t>& bytes, const std::string& what) const {
    const size_t body = bytes.size() - 4;
    uint32_t stored = 0;
    for (int i = 0; i < 4; ++i) stored |= uint32_t(bytes[body + i]) << (8 * i);
    if (stored != hdf5_checksum(bytes.data(), body)) refuse_.corrupt(what, ": checksum mismatch");
  }

  // The superblock; returns the root group's object header address.
  uint64_t superblock() {
    eof_ = file_bytes_;
    if (file_bytes_ < kSignature.size()) refuse_.not_hdf5();
    const std::vector<uint8_t> head = read(0, kSignature.size(), "signature");
    if (!std::equal(kSignature.begin(), kSignature.end(), head.begin())) refuse_.not_hdf5();
    if (file_bytes_ < kSuperblockBytes) refuse_.corrupt("truncated: ", file_bytes_, " bytes hold no superblock");
    const std::vector<uint8_t> bytes = read(0, kSuperblockBytes, "superblock");
    Cursor c(refuse_, bytes.data(), bytes.size(), "superblock");
    c.take(kSignature.size());
    const int version = c.u8();
    if (version != 2 && version != 3) refuse_.unsupported("superblock version ", version, "; ponder writes version 3");
    const int offset_bytes = c.u8(), length_bytes = c.u8();
    if (offset_bytes != 8 || length_bytes != 8)
      refuse_.unsupported(offset_bytes, "-byte offsets and ", length_bytes, "-byte lengths; ponder writes 8-byte ones");
    c.u8();  // consistency flags: libhdf5 itself refuses a file still open for writing
    const uint64_t base = c.u(8), extension = c.u(8), stored_eof = c.u(8), root = c.u(8);
    check_checksum(bytes, "superblock");
    if (base != 0) refuse_.unsupported("base address ", base, "; ponder writes 0");
    if (extension != kUndefinedAddress) refuse_.unsupported("a superblock extension");
    if (stored_eof > file_bytes_)
      refuse_.corrupt("truncated: the superblock says ", stored_eof, " bytes, the file has ", file_bytes_);
    eof_ = stored_eof;
    return root;
  }

  // One object header: its first chunk, then each continuation chunk its messages point to.
  void object(uint64_t address, const std::string& name, std::vector<Link>* links) {
    ObjectFacts facts;
    std::vector<std::pair<uint64_t, uint64_t>> continuations;
    std::vector<uint8_t> prefix = read(address, 6, name + "'s object header");
    if (std::memcmp(prefix.data(), "OHDR", 4) != 0) refuse_.unsupported(name, ": an object header other than version 2");
    if (prefix[4] != 2) refuse_.unsupported(name, ": object header version ", int(prefix[4]));
    const uint8_t flags = prefix[5];
    if (flags & 0xc0) refuse_.corrupt(name, ": reserved object header flags (", int(flags), ")");
    const int size_bytes = 1 << (flags & 3);
    const uint64_t prefix_bytes = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0) + size_bytes;
    prefix = read(address, prefix_bytes, name + "'s object header");
    uint64_t chunk_bytes = 0;
    for (int i = 0; i < size_bytes; ++i) chunk_bytes |= uint64_t(prefix[prefix_bytes - size_bytes + i]) << (8 * i);
    check_chunk_size(chunk_bytes, name);
    const std::vector<uint8_t> chunk = read(address, prefix_bytes + chunk_bytes + 4, name + "'s object header");
    check_checksum(chunk, name + "'s object header");
    messages(Cursor(refuse_, chunk.data() + prefix_bytes, chunk_bytes, name + "'s object header"), flags, facts,
             continuations, links);
    for (size_t i = 0; i < continuations.size(); ++i) {  // grows while chunks point to more chunks
      const auto [at, bytes] = continuations[i];
      const std::string what = name + "'s continuation chunk";
      if (++chunks_ > kMaxChunks) refuse_.unsupported("more than ", kMaxChunks, " object header chunks");
      check_chunk_size(bytes, what);
      if (bytes < 8) refuse_.corrupt(what, ": ", bytes, " bytes cannot hold a signature and checksum");
      const std::vector<uint8_t> block = read(at, bytes, what);
      if (std::memcmp(block.data(), "OCHK", 4) != 0) refuse_.corrupt(what, ": no OCHK signature");
      check_checksum(block, what);
      messages(Cursor(refuse_, block.data() + 4, bytes - 8, what), flags, facts, continuations, links);
    }
    check_data_size(facts, name);
  }

  void check_chunk_size(uint64_t bytes, const std::string& what) const {
    if (bytes > kMaxChunkBytes)
      refuse_.corrupt(what, ": a chunk of ", bytes, " bytes (more than ", kMaxChunkBytes, " is not a shard's header)");
  }

  // The messages of one chunk; a remainder too short for a message header is the chunk's gap.
  void messages(Cursor chunk, uint8_t header_flags, ObjectFacts& facts,
                std::vector<std::pair<uint64_t, uint64_t>>& continuations, std::vector<Link>* links) {
    const bool creation_order = header_flags & 0x04;
    const size_t header_bytes = creation_order ? 6 : 4;
    while (chunk.left() >= header_bytes) {
      const auto type = static_cast<uint16_t>(chunk.u8());
      const uint64_t size = chunk.u(2);
      const uint8_t flags = chunk.u8();
      if (creation_order) chunk.u(2);
      const std::string what = chunk.what() + ": " + message_name(type);
      if (size > chunk.left())
        refuse_.corrupt(what, " of ", size, " bytes runs past the end of its chunk (", chunk.left(), " bytes left)");
      if (flags & 0x02) refuse_.unsupported(what, " is shared");
      Cursor body = chunk.sub(size, what);
      message(type, body, facts, continuations, links);
    }
  }

  void message(uint16_t type, Cursor& body, ObjectFacts& facts,
               std::vector<std::pair<uint64_t, uint64_t>>& continuations, std::vector<Link>* links) {
    switch (type) {
      case kNil: return;
      case kDataspace: facts.elements = dataspace(body), facts.has_space = true; return;
      case kDatatype: facts.element_bytes = datatype(body, body.what()), facts.has_type = true; return;
      case kFillValue: return fill_value(body);
      case kLayout: facts.stored_bytes = layout(body), facts.has_layout = true; return;
      case kLinkInfo: return dense_storage_absent(body, 8, "links");
      case kAttributeInfo: return dense_storage_absent(body, 2, "attributes");
      case kGroupInfo: return group_info(body);
      case kLink: return link(body, links);
      case kAttribute: return attribute(body);
      case kModificationTime: versioned(body, 1, 7); return;
      case kReferenceCount: versioned(body, 0, 4); return;
      case kContinuation: {
        const uint64_t at = body.u(8), bytes = body.u(8);
        continuations.emplace_back(at, bytes);
        return;
      }
      default: refuse_.unsupported(body.what(), ", which ponder does not write");
    }
  }

  void versioned(Cursor& c, int version, size_t rest) {
    if (c.u8() != version) refuse_.unsupported(c.what(), ": version other than ", version);
    c.take(rest);
  }

  // Dataspace, version 2; returns the number of elements.
  uint64_t dataspace(Cursor& c) {
    const int version = c.u8(), rank = c.u8(), flags = c.u8(), kind = c.u8();
    if (version != 2) refuse_.unsupported(c.what(), ": dataspace version ", version);
    if (rank > 32 || (flags & ~1) || kind > 2 || (kind != 1 && rank != 0))
      refuse_.corrupt(c.what(), ": dataspace of rank ", rank, ", flags ", flags, ", kind ", kind);
    if (kind == 2) return 0;  // null dataspace
    uint64_t elements = 1;
    for (int d = 0; d < rank; ++d) {
      const uint64_t extent = c.u(8);
      if (extent != 0 && elements > kMaxElements / extent)
        refuse_.corrupt(c.what(), ": a dataspace of more than 2^62 elements");
      elements *= extent;
    }
    if (flags & 1) c.take(uint64_t(rank) * 8);  // maximum extents
    return elements;
  }

  // Datatype: integers, IEEE-style floats and fixed-length strings; returns the element size.
  uint32_t datatype(Cursor& c, const std::string& owner) {
    const uint8_t class_and_version = c.u8();
    const int type_class = class_and_version & 0x0f, version = class_and_version >> 4;
    const uint8_t* bits = c.take(3);
    const auto bytes = static_cast<uint32_t>(c.u(4));
    if (version < 1 || version > 3) refuse_.unsupported(owner, ": datatype version ", version);
    if (type_class == 9) refuse_.unsupported(owner, ": a variable-length type; ponder writes fixed-length strings");
    if (type_class == 3) {
      if (bytes < 1 || bytes > kMaxTypeBytes) refuse_.corrupt(owner, ": a string type of ", bytes, " bytes");
      return bytes;
    }
    if (type_class != 0 && type_class != 1)
      refuse_.unsupported(owner, ": datatype class ", type_class, "; ponder writes integers and strings");
    if (bytes != 1 && bytes != 2 && bytes != 4 && bytes != 8) refuse_.corrupt(owner, ": a number of ", bytes, " bytes");
    const uint64_t offset = c.u(2), precision = c.u(2);
    if (offset != 0 || precision != 8 * bytes)
      refuse_.corrupt(owner, ": ", precision, " bits at bit ", offset, " in a ", bytes, "-byte number");
    if (type_class == 1) {  // exponent and mantissa fields must lie inside the number
      const int exponent_at = c.u8(), exponent_bits = c.u8(), mantissa_at = c.u8(), mantissa_bits = c.u8();
      c.u(4);  // exponent bias
      const int sign_at = bits[1];
      if (exponent_at + exponent_bits > int(precision) || mantissa_at + mantissa_bits > int(precision) ||
          sign_at >= int(precision))
        refuse_.corrupt(owner, ": a float whose fields lie outside its ", precision, " bits");
    }
    return bytes;
  }

  // Fill value, version 3: a value, if any, must fit in the message.
  void fill_value(Cursor& c) {
    const int version = c.u8(), flags = c.u8();
    if (version != 3) refuse_.unsupported(c.what(), ": fill value version ", version);
    if (flags & 0x20) c.take(c.u(4));
  }

  // Data layout, version 3 or 4: compact (inside the message) or contiguous (inside the file);
  // returns the bytes stored.
  uint64_t layout(Cursor& c) {
    const int version = c.u8(), layout_class = c.u8();
    if (version != 3 && version != 4) refuse_.unsupported(c.what(), ": layout version ", version);
    if (layout_class == 0) {
      const uint64_t bytes = c.u(2);
      c.take(bytes);
      return bytes;
    }
    if (layout_class != 1)
      refuse_.unsupported(c.what(), ": ", layout_class == 2 ? "chunked" : "virtual",
                          " storage; ponder writes contiguous datasets");
    const uint64_t address = c.u(8), bytes = c.u(8);
    if (address != kUndefinedAddress && (address > eof_ || bytes > eof_ - address))
      refuse_.corrupt(c.what(), ": data at byte ", address, " (", bytes, " bytes) lies past the end of the file (", eof_,
                      " bytes)");
    return bytes;
  }

  // A dataset's storage must hold exactly its elements: libhdf5 reads that many bytes.
  void check_data_size(const ObjectFacts& f, const std::string& name) const {
    if (!f.has_layout) return;
    if (!f.has_type || !f.has_space) refuse_.corrupt(name, ": a dataset without a datatype or dataspace");
    if (f.elements > kMaxElements / f.element_bytes || f.elements * f.element_bytes != f.stored_bytes)
      refuse_.corrupt(name, ": ", f.elements, " elements of ", f.element_bytes, " bytes but ", f.stored_bytes,
                      " bytes of storage");
  }

  // Link info (version 0) or attribute info (version 0): only compact storage, in the header.
  void dense_storage_absent(Cursor& c, int max_creation_index_bytes, const char* what) {
    const int version = c.u8(), flags = c.u8();
    if (version != 0) refuse_.unsupported(c.what(), ": version ", version);
    if (flags & 1) c.take(max_creation_index_bytes);
    if (c.u(8) != kUndefinedAddress) refuse_.unsupported(what, " in dense storage");
    c.u(8);  // name index, meaningless without a heap
    if (flags & 2) c.u(8);
  }

  void group_info(Cursor& c) {
    const int version = c.u8(), flags = c.u8();
    if (version != 0) refuse_.unsupported(c.what(), ": group info version ", version);
    if (flags & 1) c.take(4);
    if (flags & 2) c.take(4);
  }

  // Link, version 1: a hard link, its name within the message; collected for the root group only.
  void link(Cursor& c, std::vector<Link>* links) {
    const int version = c.u8(), flags = c.u8();
    if (version != 1) refuse_.unsupported(c.what(), ": link version ", version);
    const int link_type = (flags & 0x08) ? c.u8() : 0;
    if (flags & 0x04) c.u(8);  // creation order
    if (flags & 0x10) c.u8();  // name character set
    const uint64_t name_bytes = c.u(1 << (flags & 3));
    if (name_bytes == 0) refuse_.corrupt(c.what(), ": a link with an empty name");
    const uint8_t* name = c.take(name_bytes);
    if (link_type != 0) refuse_.unsupported("link ", quoted(name, name_bytes), " is not a hard link");
    const uint64_t address = c.u(8);
    if (address >= eof_) refuse_.corrupt("link ", quoted(name, name_bytes), " points past the end of the file");
    if (links) links->push_back({quoted(name, name_bytes), address});
  }

  // Attribute, version 3: a NUL-terminated name, a datatype, a dataspace and the data, each
  // within the message and the data exactly as large as type and space say.
  void attribute(Cursor& c) {
    const int version = c.u8(), flags = c.u8();
    if (version != 3) refuse_.unsupported(c.what(), ": attribute version ", version);
    if (flags != 0) refuse_.unsupported(c.what(), ": an attribute with a shared datatype or dataspace");
    const uint64_t name_bytes = c.u(2), type_bytes = c.u(2), space_bytes = c.u(2);
    c.u8();  // name character set
    if (name_bytes == 0) refuse_.corrupt(c.what(), ": an attribute without a name");
    const uint8_t* name = c.take(name_bytes);
    if (name[name_bytes - 1] != 0) refuse_.corrupt(c.what(), ": an attribute name that is not NUL-terminated");
    const std::string owner = "attribute " + quoted(name, std::find(name, name + name_bytes, 0) - name);
    Cursor type = c.sub(type_bytes, owner + "'s datatype");
    Cursor space = c.sub(space_bytes, owner + "'s dataspace");
    const uint64_t element_bytes = datatype(type, owner), elements = dataspace(space);
    if (elements > c.left() / element_bytes)
      refuse_.corrupt(owner, ": ", elements, " elements of ", element_bytes, " bytes do not fit the ", c.left(),
                      " bytes left in its message");
  }

  Refuse refuse_;
  std::ifstream in_;
  uint64_t file_bytes_ = 0, eof_ = 0;
  int chunks_ = 0;
  std::set<uint64_t> objects_;
};

}  // namespace

void check_hdf5_structure(const fs::path& path) { Checker(path).run(); }

}  // namespace ponder::data
