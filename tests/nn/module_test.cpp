#include "nn/module.h"

#include <gtest/gtest.h>

#include "ops/ops.h"

namespace ponder::nn {
namespace {

struct Leaf : Module {
  Tensor weight, bias, running;
  Leaf(int64_t n) {
    weight = ones({n, 2});
    bias = zeros({n});
    running = zeros({n});
    register_parameter("weight", weight);
    register_parameter("bias", bias);
    register_buffer("running", running);
  }
};

struct Tree : Module {
  std::shared_ptr<Leaf> head;
  std::shared_ptr<ModuleList<Leaf>> layers;
  Tensor scratch;
  Tree() {
    head = register_module("head", std::make_shared<Leaf>(3));
    layers = register_module("layers", std::make_shared<ModuleList<Leaf>>());
    layers->push_back(std::make_shared<Leaf>(1));
    layers->push_back(std::make_shared<Leaf>(2));
    scratch = zeros({4});
    register_buffer("scratch", scratch, /*persistent=*/false);
  }
};

TEST(Module, DottedNamesFollowTheTree) {
  Tree t;
  std::vector<std::string> names;
  for (auto& [n, p] : t.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"head.weight", "head.bias", "layers.0.weight", "layers.0.bias",
                                             "layers.1.weight", "layers.1.bias"}));
  EXPECT_EQ(t.num_parameters(), 3 * 3 + 1 * 3 + 2 * 3);
  std::vector<std::string> modules;
  for (auto& [n, m] : t.named_modules()) modules.push_back(n);
  EXPECT_EQ(modules, (std::vector<std::string>{"", "head", "layers", "layers.0", "layers.1"}));
  std::vector<std::string> state;
  for (auto& [n, v] : t.state_dict()) state.push_back(n);
  EXPECT_EQ(state.size(), 9u);  // 6 parameters + 3 persistent buffers (scratch is not)
  EXPECT_TRUE(t.head->weight.requires_grad());
  EXPECT_FALSE(t.head->running.requires_grad());
}

TEST(Module, ParametersAreTheMembersThemselves) {
  Tree t;
  TensorList ps = t.parameters();
  EXPECT_TRUE(ps[0].is_same(t.head->weight));
  (t.head->weight * 2.0).sum().backward();
  EXPECT_TRUE(t.parameters()[0].grad().defined());
  t.zero_grad();
  EXPECT_FALSE(t.head->weight.grad().defined());
}

TEST(Module, ConversionKeepsLeavesAndRequiresGrad) {
  Tree t;
  t.layers->operator[](0).weight.set_requires_grad(false);
  t.to(DType::f64);
  EXPECT_EQ(t.head->weight.dtype(), DType::f64);
  EXPECT_EQ(t.head->running.dtype(), DType::f64);
  EXPECT_TRUE(t.head->weight.is_leaf());
  EXPECT_TRUE(t.head->weight.requires_grad());
  EXPECT_FALSE((*t.layers)[0].weight.requires_grad());
  EXPECT_TRUE(t.parameters()[0].is_same(t.head->weight));  // the registry follows the member
  t.to(Device::cpu());
  EXPECT_EQ(t.head->weight.dtype(), DType::f64);
}

TEST(Module, FreezingAndModes) {
  Tree t;
  t.layers->set_requires_grad(false);
  EXPECT_TRUE(t.head->weight.requires_grad());
  EXPECT_FALSE((*t.layers)[1].bias.requires_grad());
  EXPECT_TRUE(t.is_training());
  t.train(false);
  EXPECT_FALSE((*t.layers)[1].is_training());
}

TEST(Module, StateDictRoundTripAndStrictChecks) {
  Tree a, b;
  {
    NoGrad g;
    fill_(a.head->weight, 5.0);
    fill_(a.layers->operator[](1).running, 7.0);
  }
  std::map<std::string, Tensor> state;
  for (auto& [n, v] : a.state_dict()) state[n] = v;
  b.load_state_dict(state);
  EXPECT_EQ(b.head->weight.to_vector<float>(), std::vector<float>(6, 5.0f));
  EXPECT_EQ((*b.layers)[1].running.to_vector<float>(), std::vector<float>(2, 7.0f));

  auto extra = state;
  extra["head.wieght"] = zeros({1});
  EXPECT_THROW(b.load_state_dict(extra), ValueError);
  EXPECT_NO_THROW(b.load_state_dict(extra, /*strict=*/false));
  auto missing = state;
  missing.erase("layers.0.bias");
  EXPECT_THROW(b.load_state_dict(missing), ValueError);
  auto wrong = state;
  wrong["head.bias"] = zeros({4});
  EXPECT_THROW(b.load_state_dict(wrong), ShapeError);
}

struct Twice : Module {
  Tensor w;
  Twice() {
    w = zeros({1});
    register_parameter("w", w);
  }
  void again() { register_parameter("w", w); }
};

TEST(Module, NamesMustBeUnique) {
  Twice t;
  EXPECT_THROW(t.again(), ValueError);
}

}  // namespace
}  // namespace ponder::nn
