// cuBLASLt products and the dense layer against their CPU twins.
#include "gpu/twin.h"
#include "optim/grad_buffer.h"
#include "support/test_util.h"

#if PONDER_WITH_CUDA
#include "backend/cuda/matmul.h"
#endif

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::random_tensor;
using testing::relative_error;
using testing::twin_tolerance;

using Matmul = testing::CudaTwin;
using Linear = testing::CudaTwin;

const DType kGpuTypes[] = {DType::f32, DType::bf16};

Tensor product(const TensorList& in) { return matmul(in[0], in[1]); }

struct Dims {
  int64_t m, k, n;
};

TEST_F(Matmul, ShapesWithUnitAndOddSizes) {
  const Dims dims[] = {{1, 1, 1}, {1, 7, 5}, {5, 1, 3}, {4, 9, 1}, {17, 33, 65}, {64, 128, 96}, {130, 257, 67}};
  for (DType dt : kGpuTypes) {
    for (Dims d : dims) {
      Tensor a = random_tensor({d.m, d.k}, 1, dt, true), b = random_tensor({d.k, d.n}, 2, dt, true);
      EXPECT_TRUE(cuda_matches_cpu(product, {a, b}, twin_tolerance(dt))) << dtype_name(dt) << " " << d.m << "x"
                                                                          << d.k << "x" << d.n;
    }
  }
  Tensor a = random_tensor({19, 23}, 1, DType::f64, true), b = random_tensor({23, 11}, 2, DType::f64, true);
  EXPECT_TRUE(cuda_matches_cpu(product, {a, b}, twin_tolerance(DType::f64)));
}

TEST_F(Matmul, VectorsOnEitherSide) {
  for (DType dt : kGpuTypes) {
    double tol = twin_tolerance(dt);
    Tensor m = random_tensor({3, 21, 13}, 1, dt, true), v = random_tensor({13}, 2, dt, true);
    EXPECT_TRUE(cuda_matches_cpu(product, {m, v}, tol));
    EXPECT_TRUE(cuda_matches_cpu(product, {v, v}, tol));
    // the row vector is broadcast over m's batch; its own gradient would need a batch reduction
    Tensor u = random_tensor({21}, 3, dt);
    EXPECT_TRUE(cuda_matches_cpu(product, {u, m}, tol));
  }
}

// Transposed views are read in place (a transpose flag); rows further apart than their length are
// read with a larger leading dimension; anything else is packed first.
TEST_F(Matmul, TransposedAndStridedViews) {
  for (DType dt : kGpuTypes) {
    double tol = twin_tolerance(dt);
    Tensor a = random_tensor({29, 37}, 1, dt, true), b = random_tensor({37, 45}, 2, dt, true);
    Tensor at = random_tensor({37, 29}, 3, dt, true), bt = random_tensor({45, 37}, 4, dt, true);
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return matmul(in[0].t(), in[1].t()); }, {at, bt}, tol));
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return matmul(in[0].t(), in[1]); }, {at, b}, tol));
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return matmul(in[0], in[1].t()); }, {a, bt}, tol));
    Tensor wide = random_tensor({29, 50}, 5, dt, true);
    auto column_window = [](const TensorList& in) { return matmul(in[0].slice(1, 3, 40), in[1]); };
    EXPECT_TRUE(cuda_matches_cpu(column_window, {wide, b}, tol));  // row stride 50 > 37 columns
    auto every_other_column = [](const TensorList& in) { return matmul(in[0].slice(1, 0, 50, 2), in[1]); };
    Tensor b25 = random_tensor({25, 45}, 6, dt, true);
    EXPECT_TRUE(cuda_matches_cpu(every_other_column, {wide, b25}, tol));  // packed: column stride 2
  }
}

TEST_F(Matmul, BatchedWithUniformStrides) {
  for (DType dt : kGpuTypes) {
    double tol = twin_tolerance(dt);
    Tensor a = random_tensor({2, 3, 9, 14}, 1, dt, true), b = random_tensor({2, 3, 14, 11}, 2, dt, true);
    EXPECT_TRUE(cuda_matches_cpu(product, {a, b}, tol));
    // transposed matrices inside a uniform batch
    Tensor at = random_tensor({6, 14, 9}, 3, dt, true), bt = random_tensor({6, 11, 14}, 4, dt, true);
    auto both_transposed = [](const TensorList& in) { return matmul(in[0].transpose(1, 2), in[1].transpose(1, 2)); };
    EXPECT_TRUE(cuda_matches_cpu(both_transposed, {at, bt}, tol));
  }
}

// A 2-D right operand shared by the batch: the batch folds into the rows of one product, and its
// gradient is one product over the stacked rows.
TEST_F(Matmul, SharedRightOperand) {
  for (DType dt : kGpuTypes) {
    double tol = twin_tolerance(dt);
    Tensor a = random_tensor({4, 3, 10, 24}, 1, dt, true), w = random_tensor({24, 17}, 2, dt, true);
    EXPECT_TRUE(cuda_matches_cpu(product, {a, w}, tol));
    Tensor single_rows = random_tensor({5, 1, 24}, 3, dt, true);
    EXPECT_TRUE(cuda_matches_cpu(product, {single_rows, w}, tol));
    // a transposed per item cannot fold: a strided batch with a stride-0 right operand
    Tensor at = random_tensor({5, 24, 10}, 4, dt, true);
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return matmul(in[0].transpose(1, 2), in[1]); },
                                 {at, w}, tol));
  }
}

// Gradients of broadcast batch dims need the GPU sum reduction; these check the forward products.
TEST_F(Matmul, BroadcastAndNonUniformBatches) {
  for (DType dt : kGpuTypes) {
    double tol = twin_tolerance(dt);
    // stride-0 batch of the right operand, read in place (left transposed, so no folding)
    Tensor at = random_tensor({6, 12, 7}, 1, dt), b = random_tensor({1, 12, 5}, 2, dt);
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return matmul(in[0].transpose(1, 2), in[1]); },
                                 {at, b}, tol));
    // stride-0 batch of the left operand
    Tensor a2 = random_tensor({7, 12}, 3, dt), b2 = random_tensor({6, 12, 5}, 4, dt);
    EXPECT_TRUE(cuda_matches_cpu(product, {a2, b2}, tol));
    // [3, 1] x [1, 4] batches broadcast to [3, 4]: strides (s, 0) and (0, s) do not collapse
    Tensor a3 = random_tensor({3, 1, 7, 12}, 5, dt), b3 = random_tensor({4, 12, 5}, 6, dt);
    EXPECT_TRUE(cuda_matches_cpu(product, {a3, b3}, tol));
  }
}

TEST_F(Matmul, SlicedBatchIsPacked) {
  for (DType dt : kGpuTypes) {
    // batch dims [4, 3] sliced from [4, 6]: strides (6s, s) do not collapse
    Tensor a = random_tensor({4, 6, 9, 10}, 1, dt, true), b = random_tensor({4, 3, 10, 8}, 2, dt, true);
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return matmul(in[0].slice(1, 1, 4), in[1]); }, {a, b},
                                 twin_tolerance(dt)));
  }
}

TEST_F(Matmul, EmptyAndZeroInnerDimension) {
  for (DType dt : kGpuTypes) {
    Tensor a = random_tensor({0, 5}, 1, dt, true), b = random_tensor({5, 3}, 2, dt, true);
    EXPECT_TRUE(cuda_matches_cpu(product, {a, b}, twin_tolerance(dt)));
    Tensor a0 = random_tensor({4, 0}, 3, dt, true), b0 = random_tensor({0, 3}, 4, dt, true);
    // zeros, not the poisoned NaNs of a fresh allocation
    EXPECT_TRUE(cuda_matches_cpu(product, {a0, b0}, twin_tolerance(dt)));
  }
}

TEST_F(Matmul, LargeBf16ProductUsesFp32Accumulation) {
  // K = 4096 summed in bf16 would lose ~1e-1 relative; fp32 accumulation keeps a single rounding.
  Tensor a = random_tensor({128, 4096}, 1, DType::bf16), b = random_tensor({4096, 96}, 2, DType::bf16);
  Tensor exact = matmul(a.to(DType::f64), b.to(DType::f64));
  Tensor gpu = matmul(a.to(Device::cuda(0)), b.to(Device::cuda(0))).to(Device::cpu()).to(DType::f64);
  EXPECT_LT(relative_error(gpu, exact), 4e-3);
}

#if PONDER_WITH_CUDA
// Restores exact f32 products even when a check fails.
struct Tf32Scope {
  Tf32Scope() { backend::cuda::set_allow_tf32(true); }
  ~Tf32Scope() { backend::cuda::set_allow_tf32(false); }
};

TEST_F(Matmul, Tf32IsOffByDefaultAndAgreesToAboutOneInAThousand) {
  ASSERT_FALSE(backend::cuda::allow_tf32());
  Tensor a = random_tensor({256, 512}, 1, DType::f32), b = random_tensor({512, 384}, 2, DType::f32);
  Tensor exact = matmul(a.to(DType::f64), b.to(DType::f64));
  auto on_gpu = [&] { return matmul(a.to(Device::cuda(0)), b.to(Device::cuda(0))).to(Device::cpu()).to(DType::f64); };
  EXPECT_LT(relative_error(on_gpu(), exact), 1e-6);
  {
    Tf32Scope tf32;
    double err = relative_error(on_gpu(), exact);
    EXPECT_LT(err, 3e-3);
    EXPECT_GT(err, 3e-5) << "TF32 was allowed but the product is exact to f32 precision";
  }
  EXPECT_LT(relative_error(on_gpu(), exact), 1e-6);
}
#endif

Tensor dense(const TensorList& in) { return linear(in[0], in[1], in[2]); }
Tensor dense_no_bias(const TensorList& in) { return linear(in[0], in[1]); }

TEST_F(Linear, WithAndWithoutBiasIncludingGradients) {
  struct Layer {
    Shape x;
    int64_t out;
  };
  const Layer layers[] = {{{1, 1}, 1}, {{2, 5, 33}, 17}, {{7, 1}, 9}, {{300, 96}, 1}, {{33}, 40}};
  for (DType dt : kGpuTypes) {
    for (const Layer& l : layers) {
      // A [1, 1] bf16 result is one rounded number: the CPU rounds the product and then the sum
      // with the bias, cuBLASLt rounds once, so they may differ by a couple of bf16 steps.
      double tol = dt == DType::bf16 && l.x.product() == 1 ? 5e-2 : twin_tolerance(dt);
      Tensor x = random_tensor(l.x, 1, dt, true);
      Tensor w = random_tensor({l.out, l.x[l.x.size() - 1]}, 2, dt, true), b = random_tensor({l.out}, 3, dt, true);
      EXPECT_TRUE(cuda_matches_cpu(dense, {x, w, b}, tol)) << l.x << " " << dtype_name(dt);
      EXPECT_TRUE(cuda_matches_cpu(dense_no_bias, {x, w}, tol)) << l.x << " " << dtype_name(dt);
    }
  }
}

TEST_F(Linear, LargeBf16LayerWithFusedBias) {
  Tensor x = random_tensor({2, 160, 512}, 1, DType::bf16, true), w = random_tensor({384, 512}, 2, DType::bf16, true);
  Tensor b = random_tensor({384}, 3, DType::bf16, true);
  EXPECT_TRUE(cuda_matches_cpu(dense, {x, w, b}, twin_tolerance(DType::bf16)));
}

// Frozen operands: only some gradients are wanted (the bias alone takes the column-sum path).
TEST_F(Linear, GradientsOfSomeOperands) {
  for (DType dt : kGpuTypes) {
    double tol = twin_tolerance(dt);
    Tensor x = random_tensor({6, 11, 24}, 1, dt, true), x_frozen = random_tensor({6, 11, 24}, 1, dt);
    Tensor w = random_tensor({19, 24}, 2, dt, true), w_frozen = random_tensor({19, 24}, 2, dt);
    Tensor b = random_tensor({19}, 3, dt, true), b_frozen = random_tensor({19}, 3, dt);
    EXPECT_TRUE(cuda_matches_cpu(dense, {x, w_frozen, b_frozen}, tol));
    EXPECT_TRUE(cuda_matches_cpu(dense, {x_frozen, w, b_frozen}, tol));
    EXPECT_TRUE(cuda_matches_cpu(dense, {x_frozen, w_frozen, b}, tol));
    EXPECT_TRUE(cuda_matches_cpu(dense, {x, w_frozen, b}, tol));
  }
}

TEST_F(Linear, StridedOperands) {
  for (DType dt : kGpuTypes) {
    double tol = twin_tolerance(dt);
    Tensor xt = random_tensor({24, 13}, 1, dt, true), wt = random_tensor({24, 19}, 2, dt, true);
    Tensor b2 = random_tensor({19, 2}, 3, dt, true);  // its first column: a bias with stride 2
    auto views = [](const TensorList& in) { return linear(in[0].t(), in[1].t(), in[2].slice(1, 0, 1).squeeze(1)); };
    EXPECT_TRUE(cuda_matches_cpu(views, {xt, wt, b2}, tol));
  }
}

TEST_F(Linear, EmptyRowsAndZeroInputWidth) {
  for (DType dt : kGpuTypes) {
    double tol = twin_tolerance(dt);
    Tensor x = random_tensor({0, 8}, 1, dt, true), w = random_tensor({5, 8}, 2, dt, true);
    Tensor b = random_tensor({5}, 3, dt, true);
    EXPECT_TRUE(cuda_matches_cpu(dense, {x, w, b}, tol));  // no rows: zero weight and bias gradients
    Tensor x0 = random_tensor({4, 0}, 4, dt, true), w0 = random_tensor({5, 0}, 5, dt, true);
    EXPECT_TRUE(cuda_matches_cpu(dense, {x0, w0, b}, tol));  // no inputs: the output is the bias
  }
}

// A weight used four times and an input feeding two linears: the engine offers the buffered
// gradients and the GEMMs add into them (beta = 1), with the bias gradient fused as well.
TEST_F(Linear, SharedWeightAndInputAccumulateInPlace) {
  auto shared = [](const TensorList& in) {
    Tensor h = linear(in[0], in[1], in[2]);
    return linear(linear(h, in[1], in[2]), in[1]) + linear(h, in[1]);
  };
  for (DType dt : kGpuTypes) {
    Tensor x = random_tensor({2, 40, 64}, 1, dt, true), w = random_tensor({64, 64}, 2, dt, true);
    Tensor b = random_tensor({64}, 3, dt, true);
    EXPECT_TRUE(cuda_matches_cpu(shared, {x, w, b}, twin_tolerance(dt))) << dtype_name(dt);
  }
}

// Mixed precision: a bf16 weight with an fp32 gradient buffer takes its products summed in fp32
// (bf16 operands, fp32 D), across uses and across backward calls.
TEST_F(Linear, Bf16WeightAccumulatesIntoAnFp32GradBuffer) {
  auto accumulated = [](Device device) {
    Tensor x = random_tensor({96, 128}, 1, DType::bf16).to(device);
    Tensor w = random_tensor({128, 128}, 2, DType::bf16).to(device).set_requires_grad(true);
    optim::GradBuffer buffer({w}, DType::f32);
    for (uint64_t seed : {3, 4}) {
      linear(linear(x, w), w).backward(random_tensor({96, 128}, seed, DType::bf16).to(device));
    }
    EXPECT_TRUE(w.grad().is_same(buffer.view(0)));
    return buffer.view(0).to(Device::cpu());
  };
  Tensor gpu = accumulated(Device::cuda(0)), cpu = accumulated(Device::cpu());
  ASSERT_EQ(gpu.dtype(), DType::f32);
  EXPECT_LT(relative_error(gpu, cpu), 5e-3);
}

// x through the weights in[1..] as one group, the outputs side by side.
Tensor group(const TensorList& in) { return cat(linear_group(in[0], TensorList(in.begin() + 1, in.end())), -1); }

TensorList group_inputs(const std::vector<int64_t>& outs, DType dt) {
  TensorList in{random_tensor({3, 50, 96}, 1, dt, true)};
  for (size_t i = 0; i < outs.size(); ++i) in.push_back(random_tensor({outs[i], 96}, 2 + i, dt, true));
  return in;
}

// Four weights of one shape: one pointer-array product; mixed widths: a product per weight; nine:
// a batch of eight and a single product.
TEST_F(Linear, GroupMatchesCpu) {
  for (DType dt : kGpuTypes) {
    for (const std::vector<int64_t>& outs : {std::vector<int64_t>{64, 64, 64, 64}, std::vector<int64_t>{48, 16, 48},
                                             std::vector<int64_t>(9, 32)}) {
      EXPECT_TRUE(cuda_matches_cpu(group, group_inputs(outs, dt), twin_tolerance(dt)))
          << dtype_name(dt) << " " << outs.size() << " weights";
    }
  }
}

// Weights shared by two groups and a plain linear: batches that add into the engine's targets,
// and a group whose weights are partly accumulated, partly fresh.
TEST_F(Linear, GroupWithSharedWeightsAccumulates) {
  auto shared = [](const TensorList& in) {
    const TensorList ws(in.begin() + 1, in.end());
    const TensorList first = linear_group(in[0], ws);
    const TensorList second = linear_group(linear(first[0], in[1].t()), ws);
    return cat({second[0], second[1], second[2], first[1], linear(in[0], in[3])}, -1);
  };
  for (DType dt : kGpuTypes) {
    TensorList in = group_inputs({96, 96, 96}, dt);
    EXPECT_TRUE(cuda_matches_cpu(shared, in, twin_tolerance(dt))) << dtype_name(dt);
  }
}

// As training runs attention's projections: bf16 weights whose gradients are summed in fp32
// buffers, over two backward calls (one pointer-array product into fp32 D with beta = 1).
TEST_F(Linear, Bf16GroupAccumulatesIntoFp32GradBuffers) {
  auto accumulated = [](Device device) {
    Tensor x = random_tensor({96, 128}, 1, DType::bf16).to(device);
    TensorList ws;
    for (uint64_t seed : {2, 3, 4, 5}) {
      ws.push_back(random_tensor({128, 128}, seed, DType::bf16).to(device).set_requires_grad(true));
    }
    optim::GradBuffer buffer(ws, DType::f32);
    for (uint64_t seed : {6, 7}) {
      cat(linear_group(x, ws), -1).backward(random_tensor({96, 512}, seed, DType::bf16).to(device));
    }
    TensorList grads;
    for (size_t i = 0; i < ws.size(); ++i) {
      EXPECT_TRUE(ws[i].grad().is_same(buffer.view(i)));
      grads.push_back(buffer.view(i).to(Device::cpu()));
    }
    return cat(grads, 0);
  };
  Tensor gpu = accumulated(Device::cuda(0)), cpu = accumulated(Device::cpu());
  ASSERT_EQ(gpu.dtype(), DType::f32);
  EXPECT_LT(relative_error(gpu, cpu), 5e-3);
}

}  // namespace
}  // namespace ponder
