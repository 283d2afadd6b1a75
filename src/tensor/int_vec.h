// IntVec: a small fixed-capacity vector of int64 used for shapes and strides. Tensors are created
// for every op, so shapes live inline instead of on the heap.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "tensor/error.h"

namespace ponder {

class IntVec {
 public:
  static constexpr int kMaxDims = 8;

  IntVec() = default;
  IntVec(std::initializer_list<int64_t> values) { assign(values.begin(), values.end()); }
  explicit IntVec(std::span<const int64_t> values) { assign(values.begin(), values.end()); }
  explicit IntVec(const std::vector<int64_t>& values) { assign(values.begin(), values.end()); }
  static IntVec filled(int size, int64_t value) {
    IntVec v;
    v.resize(size, value);
    return v;
  }

  int size() const { return size_; }
  bool empty() const { return size_ == 0; }
  int64_t& operator[](int i) { return data_[i]; }
  int64_t operator[](int i) const { return data_[i]; }
  int64_t back() const { return data_[size_ - 1]; }
  int64_t* begin() { return data_.data(); }
  int64_t* end() { return data_.data() + size_; }
  const int64_t* begin() const { return data_.data(); }
  const int64_t* end() const { return data_.data() + size_; }
  const int64_t* data() const { return data_.data(); }

  void push_back(int64_t v) {
    check_capacity(size_ + 1);
    data_[size_++] = v;
  }
  void insert(int pos, int64_t v) {
    check_capacity(size_ + 1);
    std::copy_backward(begin() + pos, end(), end() + 1);
    data_[pos] = v;
    ++size_;
  }
  void erase(int pos) {
    std::copy(begin() + pos + 1, end(), begin() + pos);
    --size_;
  }
  void resize(int n, int64_t value = 0) {
    check_capacity(n);
    for (int i = size_; i < n; ++i) data_[i] = value;
    size_ = n;
  }

  // Product of the entries: the element count of a shape.
  int64_t product() const {
    int64_t p = 1;
    for (int i = 0; i < size_; ++i) p *= data_[i];
    return p;
  }
  std::vector<int64_t> vec() const { return {begin(), end()}; }
  std::string str() const;

  friend bool operator==(const IntVec& a, const IntVec& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  template <class It>
  void assign(It first, It last) {
    check_capacity(static_cast<int>(last - first));
    size_ = 0;
    for (; first != last; ++first) data_[size_++] = *first;
  }
  static void check_capacity(int n) {
    PONDER_CHECK(n <= kMaxDims, ShapeError, "tensors have at most ", kMaxDims,
                 " dimensions, asked for ", n);
  }

  std::array<int64_t, kMaxDims> data_{};
  int size_ = 0;
};

using Shape = IntVec;
using Strides = IntVec;

// "[2, 3, 4]"
inline std::string list_str(std::span<const int64_t> values) {
  std::string s = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(values[i]);
  }
  return s + "]";
}

inline std::string IntVec::str() const { return list_str({begin(), end()}); }

inline std::ostream& operator<<(std::ostream& os, const IntVec& v) { return os << v.str(); }

// Row-major (C-order) strides of a shape.
inline Strides contiguous_strides(const Shape& shape) {
  Strides s = Strides::filled(shape.size(), 1);
  for (int i = shape.size() - 2; i >= 0; --i) s[i] = s[i + 1] * std::max<int64_t>(shape[i + 1], 1);
  return s;
}

// Maps a possibly negative dimension index into [0, ndim); `op` names the caller in errors.
inline int wrap_dim(int64_t dim, int ndim, const char* op) {
  int64_t d = dim < 0 ? dim + ndim : dim;
  PONDER_CHECK(d >= 0 && d < std::max(ndim, 1), ShapeError, op, ": dimension ", dim,
               " is out of range for a tensor with ", ndim, " dimensions");
  return static_cast<int>(d);
}

}  // namespace ponder
