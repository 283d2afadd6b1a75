#include "dist/communicator.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "dist/grad_sync.h"
#include "dist/launch.h"
#include "dist/launch_env.h"
#include "dist/rendezvous.h"
#include "nn/linear.h"
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
