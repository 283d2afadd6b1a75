#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "ops/ops.h"
#include "support/test_util.h"
#include "tensor/allocator.h"

namespace ponder {
namespace {

TEST(Tensor, EmptyHasContiguousStrides) {
  Tensor t = Tensor::empty({2, 3, 4});
  EXPECT_EQ(t.shape(), Shape({2, 3, 4}));
  EXPECT_EQ(t.strides(), Strides({12, 4, 1}));
  EXPECT_EQ(t.numel(), 24);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.dtype(), DType::f32);
  EXPECT_TRUE(t.is_cpu());
}

TEST(Tensor, EmptyTensorsAreContiguousWithAnyStrides) {
  Tensor t = Tensor::empty({2, 0, 6});
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_TRUE(t.as_strided({2, 0, 6}, {0, 0, 0}, 0).is_contiguous());
  EXPECT_EQ(zeros({}).expand({2, 0, 6}).reshape({0, 6}).shape(), Shape({0, 6}));
}

TEST(Tensor, ElementSizes) {
  EXPECT_EQ(element_size(DType::f32), 4u);
  EXPECT_EQ(element_size(DType::f64), 8u);
  EXPECT_EQ(element_size(DType::bf16), 2u);
  EXPECT_EQ(element_size(DType::i32), 4u);
  EXPECT_EQ(element_size(DType::i64), 8u);
  EXPECT_EQ(element_size(DType::u8), 1u);
  EXPECT_EQ(parse_dtype("bfloat16"), DType::bf16);
  EXPECT_THROW(parse_dtype("f16"), DTypeError);
}

TEST(Tensor, Bf16RoundsToNearestEven) {
  EXPECT_EQ(bf16(1.0f).bits, 0x3F80);
  // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even mantissa (1.0).
  EXPECT_EQ(float(bf16(1.00390625f)), 1.0f);
  // 1 + 3*2^-8 is halfway too, and rounds up to the even neighbour 1 + 2^-6.
  EXPECT_EQ(float(bf16(1.01171875f)), 1.015625f);
  EXPECT_TRUE(std::isnan(float(bf16(std::nanf("")))));
  EXPECT_TRUE(std::isinf(float(bf16(std::numeric_limits<float>::max()))));  // rounds up
}

TEST(Tensor, DeviceParsing) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::parse("cuda:3").str(), "cuda:3");
  EXPECT_THROW(Device::parse("gpu"), DeviceError);
  EXPECT_THROW(Device::parse("cuda:-1"), DeviceError);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = arange(0, 12, 1, {.dtype = DType::f32}).reshape({3, 4});
  Tensor tr = t.transpose(0, 1);
  Tensor sl = t.slice(1, 1, 3);
  Tensor ex = t.slice(0, 0, 1).expand({5, 4});
  EXPECT_EQ(tr.storage(), t.storage());
  EXPECT_EQ(sl.storage(), t.storage());
  EXPECT_EQ(ex.storage(), t.storage());
  EXPECT_FALSE(tr.is_contiguous());
  EXPECT_EQ(tr.strides(), Strides({1, 4}));
  EXPECT_EQ(sl.to_vector<float>(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
  EXPECT_EQ(ex.strides()[0], 0);
  // Writing through the base is visible in the view.
  t.data<float>()[1] = 100;
  EXPECT_EQ(sl.to_vector<float>()[0], 100);
  EXPECT_EQ(tr.contiguous().to_vector<float>()[3], 100);  // t[0][1] is tr[1][0]
}

TEST(Tensor, ViewOperations) {
  Tensor t = arange(0, 24, 1, {.dtype = DType::f64}).reshape({2, 3, 4});
  EXPECT_EQ(t.permute({2, 0, 1}).shape(), Shape({4, 2, 3}));
  EXPECT_EQ(t.permute({2, 0, 1}).contiguous().to_vector<double>()[1], 4.0);  // t[0][1][0]
  EXPECT_EQ(t.unsqueeze(1).shape(), Shape({2, 1, 3, 4}));
  EXPECT_EQ(t.unsqueeze(-1).shape(), Shape({2, 3, 4, 1}));
  EXPECT_EQ(t.unsqueeze(0).squeeze(0).shape(), t.shape());
  EXPECT_EQ(t.reshape({-1, 4}).shape(), Shape({6, 4}));
  EXPECT_EQ(t.flatten(1).shape(), Shape({2, 12}));
  EXPECT_EQ(t.slice(2, -2, 100).to_vector<double>()[0], 2.0);
  EXPECT_EQ(t.slice(2, 0, 4, 2).shape(), Shape({2, 3, 2}));
  EXPECT_EQ(t.slice(2, 0, 4, 3).contiguous().to_vector<double>()[1], 3.0);
  EXPECT_EQ(t.narrow(1, 1, 2).shape(), Shape({2, 2, 4}));
  // reshape of a non-contiguous tensor copies; view refuses.
  EXPECT_THROW(t.transpose(0, 2).view({24}), ShapeError);
  EXPECT_EQ(t.transpose(0, 2).reshape({24}).to_vector<double>()[1], 12.0);
}

TEST(Tensor, BadShapesNameTheOperation) {
  Tensor t = zeros({2, 3});
  try {
    t.reshape({4, 2});
    FAIL() << "expected a ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("view: shape [4, 2] is invalid for 6 elements"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(t.squeeze(0), ShapeError);
  EXPECT_THROW(t.transpose(0, 2), ShapeError);
  EXPECT_THROW(t.expand({3, 3}), ShapeError);
  EXPECT_THROW(t.narrow(1, 2, 2), ShapeError);
  EXPECT_THROW(Tensor::empty({1, 1, 1, 1, 1, 1, 1, 1, 1}), ShapeError);
}

TEST(Tensor, DtypeConversionsRoundTrip) {
  Tensor t = tensor({1.5, -2.25, 3.0, 0.0009765625}, {4}, {.dtype = DType::f64});
  EXPECT_EQ(t.to(DType::f32).to(DType::f64).to_vector<double>(), t.to_vector<double>());
  EXPECT_EQ(t.to(DType::i64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 3, 0}));
  std::vector<float> b = t.to(DType::bf16).to_vector<float>();
  EXPECT_EQ(b[0], 1.5f);
  EXPECT_EQ(b[3], 0.0009765625f);
  EXPECT_EQ(t.to(DType::u8).dtype(), DType::u8);
}

TEST(Tensor, ItemAndPrinting) {
  Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.sum().item<float>(), 21.0f);
  EXPECT_THROW(t.item<float>(), ShapeError);
  std::ostringstream os;
  os << t;
  EXPECT_EQ(os.str(), "tensor([[1, 2, 3],\n        [4, 5, 6]], shape=[2, 3], dtype=f32, device=cpu)");
  std::ostringstream big;
  big << arange(0, 100, 1);
  EXPECT_NE(big.str().find("[0, 1, 2, ..., 97, 98, 99]"), std::string::npos) << big.str();
}

TEST(Tensor, AllocatorTracksCurrentAndPeak) {
  reset_peak_memory(Device::cpu());
  int64_t before = memory_stats(Device::cpu()).current_bytes;
  {
    Tensor a = Tensor::empty({1000}, {.dtype = DType::f64});
    EXPECT_EQ(memory_stats(Device::cpu()).current_bytes, before + 8000);
  }
  MemoryStats s = memory_stats(Device::cpu());
  EXPECT_EQ(s.current_bytes, before);
  EXPECT_GE(s.peak_bytes, before + 8000);
}

// The census counts what was allocated after it began and was live at the peak: the three small
// blocks and the huge one, not the large ones freed before (they made an earlier, lower peak),
// nor a block from before it began (whose release it ignores).
TEST(Tensor, MemoryCensusCountsTheBlocksLiveAtThePeak) {
  auto f32 = [](int64_t n) { return Tensor::empty({n}, {.dtype = DType::f32}); };
  Tensor older = f32(5000);
  { Tensor freed = f32(1 << 22); }  // a high-water mark before the census, which it leaves alone
  const int64_t before = memory_stats(Device::cpu()).current_bytes;
  const int64_t allocator_peak = memory_stats(Device::cpu()).peak_bytes;
  begin_memory_census(Device::cpu());
  std::vector<Tensor> small = {f32(1000), f32(1000), f32(1000)};
  std::vector<Tensor> large = {f32(5000), f32(5000)};
  older = Tensor();
  large.clear();
  Tensor huge = f32(20000);
  huge = Tensor();
  Tensor late = f32(100);
  const MemoryCensus c = end_memory_census(Device::cpu());
  EXPECT_EQ(c.held_before, before);
  EXPECT_EQ(c.peak, before - 20000 + 3 * 4000 + 80000);
  ASSERT_EQ(c.at_peak.size(), 2u);
  EXPECT_EQ(std::pair(c.at_peak[0].bytes, c.at_peak[0].count), std::pair(int64_t(80000), int64_t(1)));
  EXPECT_EQ(std::pair(c.at_peak[1].bytes, c.at_peak[1].count), std::pair(int64_t(4000), int64_t(3)));
  EXPECT_GE(memory_stats(Device::cpu()).peak_bytes, allocator_peak);
  // after the census, allocations are not counted any more
  Tensor after = f32(1 << 20);
  EXPECT_TRUE(end_memory_census(Device::cpu()).at_peak.empty());
}

TEST(Tensor, CudaDevicesAreRefusedClearlyWithoutAGpu) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  try {
    zeros({2}).to(Device::cuda(0));
    FAIL() << "expected a DeviceError";
  } catch (const DeviceError& e) {
    std::string what = e.what();
    std::transform(what.begin(), what.end(), what.begin(), ::tolower);
    EXPECT_NE(what.find("cuda"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ponder
