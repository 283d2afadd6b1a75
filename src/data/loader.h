// The batch loader: packed micro-batches for one rank, built ahead on a background thread, with a
// position that checkpoints save and restore.
//
// All ranks share one global row stream: epoch e's samples in epoch_order(seed, e), packed into
// rows by plan_rows, then epoch e + 1's, and so on. A step takes the next
//   G = world * micro_batches_per_step * rows_per_micro_batch
// rows of the stream; rank r takes the contiguous block of K = micro_batches_per_step *
// rows_per_micro_batch rows starting at r * K, and its micro-batch m holds rows m * R .. m * R + R
// of that block. So world size 1 with micro_batches_per_step * world micro-batches sees exactly the
// union of what the ranks see, and a run resumed with another world size (same G or not) continues
// the same row stream. Every rank plans every row (lengths only) but reads only its own samples.
//
// With `epochs` > 0 the stream ends after that many passes: the step it ends in is completed with
// rows of padding (micro-batches whose loss_tokens may be 0, on every rank alike), then next()
// returns nullopt.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "data/dataset.h"
#include "data/packing.h"

namespace ponder::data {

struct LoaderOptions {
  int64_t row_len = 0;
  int64_t rows_per_micro_batch = 1;
  int64_t micro_batches_per_step = 1;  // gradient accumulation
  int rank = 0, world = 1;
  AttentionMask mask = AttentionMask::prefix_lm;
  bool loss_on_response_only = true;  // false: plain LM, every next token counts
  int32_t pad_id = 0;
  PackStrategy strategy = PackStrategy::longest_first;
  int64_t pack_window = 1024;  // samples per longest_first window
  uint64_t seed = 0;
  bool shuffle = true;
  int64_t epochs = 0;    // passes over the data; 0 = endless
  int64_t prefetch = 2;  // micro-batches built ahead on a background thread; 0 = built inside next()
};

// The position of the global row stream at a step boundary. Save it with a checkpoint; a loader
// restored from it yields exactly the micro-batches the saved one would have yielded next.
struct LoaderState {
  int64_t epoch = 0;    // epoch of the next step's first row
  int64_t row = 0;      // that row's index in the epoch's plan
  int64_t steps = 0;    // steps consumed
  int64_t samples = 0;  // samples consumed by all ranks together
  // What the position refers to: the data (sample count and a fingerprint of the lengths), seed,
  // shuffle, row_len, strategy and window. Restoring into a loader with another plan is a
  // ValueError showing both; world size and batch geometry may change.
  std::string plan;
};

class BatchLoader {
 public:
  // `data` must outlive the loader. ValueError for impossible options or an empty source.
  BatchLoader(const SampleSource& data, LoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // This rank's next micro-batch (CPU tensors), or nullopt once the stream has ended. An error
  // while building a batch (a corrupt shard, say) is rethrown here, and again by every later call.
  std::optional<models::PackedBatch> next();

  // The position after the micro-batches next() has returned; valid at step boundaries only
  // (ValueError mid-step).
  LoaderState state() const;
  // Continues from a saved position (ValueError for another plan or a position past the epoch).
  void restore(const LoaderState& state);

  const LoaderOptions& options() const { return options_; }
  int64_t rows_per_step() const;  // G, over all ranks

 private:
  class Producer;
  struct Item {
    std::optional<models::PackedBatch> batch;  // none: the stream has ended (or error is set)
    std::optional<LoaderState> step_end;       // set on the last micro-batch of a step
    std::exception_ptr error;
    bool terminal() const { return !batch; }
  };

  Item produce();
  void start(const LoaderState& from);
  void stop();
  void run();

  const SampleSource& data_;
  LoaderOptions options_;
  std::vector<int64_t> lengths_;
  std::string plan_;
  std::unique_ptr<Producer> producer_;

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Item> queue_;  // a terminal item stays at the front
  bool stopping_ = false;

  LoaderState delivered_;        // position after the last completed step handed out
  int64_t delivered_in_step_ = 0;  // micro-batches handed out since then
};

}  // namespace ponder::data
