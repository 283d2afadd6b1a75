#include "dist/communicator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <thread>

#include "dist/grad_sync.h"
#include "dist/launch.h"
#include "dist/launch_env.h"
#include "dist/rendezvous.h"
#include "dist/zero.h"
#include "nn/linear.h"
#include "optim/sgd.h"
#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder::dist {
namespace {

Getenv env_of(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

TEST(LaunchEnv, ReadsEachLauncher) {
  LaunchEnv none = detect_launch(env_of({}));
  EXPECT_EQ(none.launcher, "none");
  EXPECT_EQ(none.world_size, 1);
  LaunchEnv mpi = detect_launch(env_of({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "16"},
                                        {"OMPI_COMM_WORLD_LOCAL_RANK", "3"}, {"RANK", "9"}, {"WORLD_SIZE", "10"}}));
  EXPECT_EQ(mpi.launcher, "mpi");
  EXPECT_EQ(mpi.rank, 3);
  EXPECT_EQ(mpi.world_size, 16);
  EXPECT_EQ(mpi.local_rank, 3);
  LaunchEnv slurm = detect_launch(env_of({{"SLURM_PROCID", "9"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "1"}}));
  EXPECT_EQ(slurm.launcher, "slurm");
  EXPECT_EQ(slurm.rank, 9);
  EXPECT_EQ(slurm.local_rank, 1);
  EXPECT_TRUE(slurm.has_mpi());
  LaunchEnv torchrun = detect_launch(env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"},
                                             {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29500"}}));
  EXPECT_EQ(torchrun.launcher, "torchrun");
  EXPECT_EQ(torchrun.master_addr, "node0");
  EXPECT_EQ(torchrun.master_port, 29500);
  EXPECT_FALSE(torchrun.has_mpi());
}

TEST(LaunchEnv, RejectsMalformedVariables) {
  EXPECT_NE(testing::error_message<Error>([] { detect_launch(env_of({{"OMPI_COMM_WORLD_RANK", "x"}, {"OMPI_COMM_WORLD_SIZE", "2"}})); })
                .find("OMPI_COMM_WORLD_RANK: expected an integer"),
            std::string::npos);
  EXPECT_NE(testing::error_message<Error>([] { detect_launch(env_of({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}})); })
                .find("is not below SLURM_NTASKS"),
            std::string::npos);
  EXPECT_NE(testing::error_message<Error>([] { detect_launch(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}})); }).find("MASTER_ADDR"),
            std::string::npos);
  EXPECT_NE(testing::error_message<Error>([] {
              detect_launch(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "70000"}}));
            }).find("not a TCP port"),
            std::string::npos);
}

TEST(LaunchEnv, CpuRanksWithoutMpiAreRefused) {
  LaunchEnv torchrun = detect_launch(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}}));
  EXPECT_NE(testing::error_message<Error>([&] { make_communicator(torchrun, Device::cpu()); }).find("start it with mpirun or srun"),
            std::string::npos);
  EXPECT_EQ(make_communicator(LaunchEnv{}, Device::cpu())->name(), "local");
}

TEST(LocalCommunicator, CollectivesOfOneProcess) {
  LocalCommunicator comm;
  Tensor t = tensor({1, 2}, {2});
  comm.all_reduce(t, ReduceOp::avg);
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2}));
  Tensor out = zeros({2});
  comm.all_gather(t, out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_NE(testing::error_message<Error>([&] { comm.all_gather(t, zeros({4})); }).find("all_gather"), std::string::npos);
  EXPECT_NE(testing::error_message<Error>([&] { comm.broadcast(t, 1); }).find("root 1"), std::string::npos);
  EXPECT_TRUE(any_rank(comm, true));
}

// The overlap machinery with one rank: buckets are sent during backward and the gradients stay
// the accumulated ones.
TEST(GradSync, OneRankKeepsTheAccumulatedGradients) {
  LocalCommunicator comm;
  Generator gen(3);
  nn::Linear first(6, 5, gen, /*bias=*/true), second(5, 3, gen, /*bias=*/true);
  TensorList params = first.parameters();
  for (const Tensor& p : second.parameters()) params.push_back(p);
  optim::GradBuffer grads(params);
  GradSync sync(grads, comm, /*bucket_bytes=*/64);
  EXPECT_EQ(sync.buckets(), 4);  // each tensor exceeds 64 bytes: one bucket each
  Tensor x = testing::random_tensor({4, 6}, 1, DType::f32);
  sum(second.forward(first.forward(x))).backward();
  sync.arm();
  sum(second.forward(first.forward(x))).backward();
  EXPECT_GE(sync.finish(), 0.0);
  Tensor twice = grads.flat().clone();
  grads.zero();
  sum(second.forward(first.forward(x))).backward();
  EXPECT_LT(testing::relative_error(twice, grads.flat() * 2.0), 1e-6);
  // A gradient that grows after its bucket was sent would be lost: refused.
  sync.arm();
  Tensor y = second.forward(first.forward(x));
  sum(y).backward({}, /*retain_graph=*/true);
  EXPECT_NE(testing::error_message<Error>([&] { sum(y).backward(); }).find("grew after its bucket was sent"), std::string::npos);
  sync.finish();
}

// Rank `rank` of `world`, for code that only asks which rank it is: every collective is refused.
class Bystander : public LocalCommunicator {
 public:
  Bystander(int rank, int world) : rank_(rank), world_(world) {}
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  WorkHandle all_reduce_async(const Tensor&, ReduceOp) override { fail<CommError>("all_reduce: a bystander"); }
  WorkHandle reduce_scatter_async(const Tensor&, const Tensor&, ReduceOp) override { fail<CommError>("reduce_scatter: a bystander"); }
  WorkHandle all_gather_async(const Tensor&, const Tensor&) override { fail<CommError>("all_gather: a bystander"); }
  WorkHandle broadcast_async(const Tensor&, int) override { fail<CommError>("broadcast: a bystander"); }

 private:
  int rank_, world_;
};

// Whole parameters in contiguous groups, one per rank, balanced by elements; each group in its own
// region of the gradient buffer, every region padded to the largest; frozen parameters left out.
TEST(ZeroShards, LaysOutContiguousGroupsInEqualRegions) {
  const std::vector<int64_t> sizes = {37, 300, 5, 120, 120, 64, 1, 200, 90};
  TensorList params;
  for (int64_t n : sizes) params.push_back(zeros({n}, {.requires_grad = true}));
  Tensor frozen = zeros({50});
  params.insert(params.begin() + 3, frozen);
  constexpr int kWorld = 3;
  constexpr int64_t kAlign = optim::GradBuffer::kAlignment;
  for (int rank = 0; rank < kWorld; ++rank) {
    Bystander comm(rank, kWorld);
    ZeroShards shards(params, comm);
    const optim::FlatLayout& layout = shards.layout();
    const int64_t region = shards.region();
    ASSERT_EQ(layout.params.size(), sizes.size());
    EXPECT_EQ(layout.numel, kWorld * region);
    EXPECT_EQ(region % kAlign, 0);
    std::vector<int64_t> load(kWorld, 0);
    int previous = 0;
    TensorList mine;
    for (size_t i = 0; i < layout.params.size(); ++i) {
      const Tensor& p = layout.params[i];
      const int owner = shards.owner(p);
      EXPECT_GE(owner, previous) << "parameter " << i << ": groups are not contiguous";
      previous = owner;
      if (owner == rank) mine.push_back(p);
      // Packed in order inside its owner's region.
      EXPECT_EQ(layout.offsets[i], owner * region + load[size_t(owner)]) << "parameter " << i;
      load[size_t(owner)] += (p.numel() + kAlign - 1) / kAlign * kAlign;
    }
    EXPECT_EQ(region, *std::max_element(load.begin(), load.end()));
    // Balanced: no region exceeds an equal share by more than its largest parameter.
    EXPECT_LE(region, 1008 / kWorld + 304);
    for (int64_t l : load) EXPECT_GT(l, 0);
    ASSERT_EQ(shards.owned().size(), mine.size());
    for (size_t i = 0; i < mine.size(); ++i) EXPECT_TRUE(shards.owned()[i].is_same(mine[i]));
    EXPECT_NE(testing::error_message<Error>([&] { shards.owner(frozen); }).find("not a sharded parameter"), std::string::npos);
    // The gradient buffer takes the layout: each gradient a view at its offset.
    optim::GradBuffer grads(layout);
    EXPECT_EQ(grads.flat().numel(), layout.numel);
    for (size_t i = 0; i < layout.params.size(); ++i) EXPECT_EQ(layout.params[i].grad().offset(), layout.offsets[i]);
  }
}

// One process: the reduce-scatter and all-gather are copies, and the step updates every parameter.
TEST(ZeroShards, OneRankOwnsAndUpdatesEverything) {
  LocalCommunicator comm;
  Generator gen(5);
  nn::Linear layer(4, 3, gen, /*bias=*/true);
  ZeroShards shards(layer.parameters(), comm);
  EXPECT_EQ(shards.owned().size(), 2u);
  optim::GradBuffer grads(shards.layout());
  sum(layer.forward(testing::random_tensor({2, 4}, 1, DType::f32))).backward();
  Tensor before = grads.flat().clone();
  EXPECT_GE(shards.reduce_gradients(grads), 0.0);
  EXPECT_EQ(testing::relative_error(grads.flat(), before), 0.0);
  optim::Sgd sgd({{.name = "all", .params = layer.parameters()}}, {.lr = 1.0});
  Tensor expected = layer.weight.detach() - layer.weight.grad();
  shards.step(sgd);
  EXPECT_LT(testing::relative_error(layer.weight, expected), 1e-7);
  EXPECT_NE(testing::error_message<Error>([&] { shards.reduce_gradients(optim::GradBuffer(layer.parameters(), DType::f64)); })
                .find("not laid out for sharding"),
            std::string::npos);
}

RendezvousOptions meeting(int port, int rank, int world, const std::string& job, int timeout_ms) {
  return {.host = "127.0.0.1", .port = port, .rank = rank, .world_size = world, .job_id = job,
          .timeout = std::chrono::milliseconds(timeout_ms)};
}

TEST(Rendezvous, EveryRankGetsRankZerosPayload) {
  const int port = free_tcp_port();
  const std::string payload("nccl\0id\n bytes", 15);
  std::vector<std::string> got(3);
  std::vector<std::thread> ranks;
  // Ranks 1 and 2 start first and retry until rank 0 listens.
  for (int r : {2, 1, 0}) {
    ranks.emplace_back([&, r] { got[size_t(r)] = rendezvous(meeting(port, r, 3, "job-a", 20000), r == 0 ? payload : ""); });
    if (r != 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (auto& t : ranks) t.join();
  EXPECT_EQ(got, std::vector<std::string>(3, payload));
}

TEST(Rendezvous, OtherJobsAndMissingRanksFailClearly) {
  const int port = free_tcp_port();
  std::string server_error, client_error;
  std::thread server([&] {
    server_error = testing::error_message<CommError>([&] { rendezvous(meeting(port, 0, 2, "job-a", 2000), "id"); });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  client_error = testing::error_message<CommError>([&] { rendezvous(meeting(port, 1, 2, "job-b", 2000), ""); });
  server.join();
  EXPECT_NE(client_error.find("rank 0 serves job \"job-a\""), std::string::npos) << client_error;
  EXPECT_NE(server_error.find("only 1 of 2 ranks joined"), std::string::npos) << server_error;
  const std::string alone =
      testing::error_message<CommError>([&] { rendezvous(meeting(free_tcp_port(), 1, 2, "job-a", 500), ""); });
  EXPECT_NE(alone.find("did not answer"), std::string::npos) << alone;
}

}  // namespace
}  // namespace ponder::dist
