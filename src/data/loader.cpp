#include "data/loader.h"

#include <sstream>

#include "data/hash.h"
#include "data/sampler.h"

namespace ponder::data {
namespace {

const char* strategy_name(PackStrategy s) { return s == PackStrategy::greedy ? "greedy" : "longest_first"; }

std::string describe_plan(const std::vector<int64_t>& lengths, const LoaderOptions& o) {
  Fnv1a fingerprint;
  for (int64_t length : lengths) fingerprint.add(static_cast<uint64_t>(length));
  std::ostringstream os;
  os << "samples=" << lengths.size() << " lengths=" << fingerprint.hex() << " seed=" << o.seed
     << " shuffle=" << (o.shuffle ? "yes" : "no") << " row_len=" << o.row_len << " strategy=" << strategy_name(o.strategy)
     << " window=" << o.pack_window;
  return os.str();
}

void check_options(const LoaderOptions& o) {
  PONDER_CHECK(o.row_len > 0, ValueError, "BatchLoader: row_len must be positive, got ", o.row_len);
  PONDER_CHECK(o.rows_per_micro_batch > 0, ValueError, "BatchLoader: rows_per_micro_batch must be positive, got ",
               o.rows_per_micro_batch);
  PONDER_CHECK(o.micro_batches_per_step > 0, ValueError, "BatchLoader: micro_batches_per_step must be positive, got ",
               o.micro_batches_per_step);
  PONDER_CHECK(o.world > 0 && o.rank >= 0 && o.rank < o.world, ValueError, "BatchLoader: rank ", o.rank,
               " is not in a world of ", o.world);
  PONDER_CHECK(o.pack_window > 0, ValueError, "BatchLoader: pack_window must be positive, got ", o.pack_window);
  PONDER_CHECK(o.epochs >= 0, ValueError, "BatchLoader: epochs must be >= 0 (0 = endless), got ", o.epochs);
  PONDER_CHECK(o.prefetch >= 0, ValueError, "BatchLoader: prefetch must be >= 0, got ", o.prefetch);
}

}  // namespace

// Walks the global row stream and builds this rank's micro-batches.
class BatchLoader::Producer {
 public:
  Producer(const SampleSource& data, const LoaderOptions& o, const std::vector<int64_t>& lengths,
           const LoaderState& from)
      : data_(data), o_(o), lengths_(lengths), position_(from), micro_(o.micro_batches_per_step) {
    PONDER_CHECK(from.epoch >= 0 && from.row >= 0 && from.steps >= 0 && from.samples >= 0, ValueError,
                 "BatchLoader::restore: negative position (epoch ", from.epoch, ", row ", from.row, ")");
    enter(from.epoch);
    PONDER_CHECK(from.row <= plan_.rows(), ValueError, "BatchLoader::restore: row ", from.row, " is past the ",
                 plan_.rows(), " rows of epoch ", from.epoch);
    position_.row = from.row;
    skip_finished_epoch();
  }

  // The next micro-batch, or a terminal item once the stream has ended.
  Item next() {
    const int64_t rows = o_.rows_per_micro_batch;
    if (micro_ == o_.micro_batches_per_step && !load_step()) return {};
    std::vector<std::vector<Sample>> batch(rows);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t id : my_rows_[micro_ * rows + r]) batch[r].push_back(fit_to_row(data_.get(id), o_.row_len));
    Item item;
    item.batch = pack_rows(batch, {.row_len = o_.row_len, .mask = o_.mask,
                                   .loss_on_response_only = o_.loss_on_response_only, .pad_id = o_.pad_id});
    if (++micro_ == o_.micro_batches_per_step) item.step_end = position_;
    return item;
  }

 private:
  bool ended() const { return o_.epochs > 0 && position_.epoch >= o_.epochs; }

  void enter(int64_t epoch) {
    order_ = epoch_order(static_cast<int64_t>(lengths_.size()), o_.seed, epoch, o_.shuffle);
    std::vector<int64_t> ordered(order_.size());
    for (size_t k = 0; k < order_.size(); ++k) ordered[k] = lengths_[order_[k]];
    plan_ = plan_rows(ordered, o_.row_len, o_.strategy, o_.pack_window);
    position_.epoch = epoch;
    position_.row = 0;
  }

  // After an epoch's last row the position is the next epoch's first row.
  void skip_finished_epoch() {
    if (position_.row < plan_.rows()) return;
    if (o_.epochs > 0 && position_.epoch + 1 >= o_.epochs) {
      ++position_.epoch;
      position_.row = 0;
    } else {
      enter(position_.epoch + 1);
    }
  }

  // The next row's samples (dataset indices); none once the stream has ended.
  std::vector<int64_t> take_row() {
    if (ended()) return {};
    std::vector<int64_t> samples;
    for (int64_t k : plan_.row(position_.row)) samples.push_back(order_[k]);
    ++position_.row;
    position_.samples += static_cast<int64_t>(samples.size());
    skip_finished_epoch();
    return samples;
  }

  // Takes the step's G rows of the stream, keeping this rank's block.
  bool load_step() {
    if (ended()) return false;
    const int64_t block = o_.micro_batches_per_step * o_.rows_per_micro_batch;
    my_rows_.assign(block, {});
    for (int64_t g = 0; g < block * o_.world; ++g) {
      std::vector<int64_t> row = take_row();
      if (g / block == o_.rank) my_rows_[g % block] = std::move(row);
    }
    ++position_.steps;
    micro_ = 0;
    return true;
  }

  const SampleSource& data_;
  const LoaderOptions& o_;
  const std::vector<int64_t>& lengths_;
  LoaderState position_;
  std::vector<int64_t> order_;  // the current epoch's sample order
  RowPlan plan_;                // its rows, as positions in order_
  std::vector<std::vector<int64_t>> my_rows_;
  int64_t micro_;
};

BatchLoader::BatchLoader(const SampleSource& data, LoaderOptions options) : data_(data), options_(options) {
  check_options(options_);
  PONDER_CHECK(data.size() > 0, ValueError, "BatchLoader: the data has no samples");
  lengths_ = data.packed_lengths();
  plan_ = describe_plan(lengths_, options_);
  start(LoaderState{.plan = plan_});
}

BatchLoader::~BatchLoader() { stop(); }

int64_t BatchLoader::rows_per_step() const {
  return options_.world * options_.micro_batches_per_step * options_.rows_per_micro_batch;
}

void BatchLoader::start(const LoaderState& from) {
  auto producer = std::make_unique<Producer>(data_, options_, lengths_, from);
  stop();
  producer_ = std::move(producer);
  queue_.clear();
  stopping_ = false;
  delivered_ = from;
  delivered_in_step_ = 0;
  if (options_.prefetch > 0) thread_ = std::thread([this] { run(); });
}

void BatchLoader::stop() {
  {
    std::lock_guard hold(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

BatchLoader::Item BatchLoader::produce() {
  try {
    return producer_->next();
  } catch (...) {
    Item failed;
    failed.error = std::current_exception();
    return failed;
  }
}

void BatchLoader::run() {
  for (;;) {
    {
      std::unique_lock hold(mutex_);
      changed_.wait(hold, [&] { return stopping_ || static_cast<int64_t>(queue_.size()) < options_.prefetch; });
      if (stopping_) return;
    }
    Item item = produce();
    const bool terminal = item.terminal();
    {
      std::lock_guard hold(mutex_);
      queue_.push_back(std::move(item));
    }
    changed_.notify_all();
    if (terminal) return;
  }
}

std::optional<models::PackedBatch> BatchLoader::next() {
  Item item;
  {
    std::unique_lock hold(mutex_);
    if (options_.prefetch == 0 && queue_.empty()) queue_.push_back(produce());
    changed_.wait(hold, [&] { return !queue_.empty(); });
    if (queue_.front().terminal()) {
      item = queue_.front();
    } else {
      item = std::move(queue_.front());
      queue_.pop_front();
    }
  }
  changed_.notify_all();
  if (item.error) std::rethrow_exception(item.error);
  if (!item.batch) return std::nullopt;
  ++delivered_in_step_;
  if (item.step_end) {
    delivered_ = *item.step_end;
    delivered_in_step_ = 0;
  }
  return std::move(item.batch);
}

LoaderState BatchLoader::state() const {
  PONDER_CHECK(delivered_in_step_ == 0, ValueError, "BatchLoader::state: ", delivered_in_step_, " of a step's ",
               options_.micro_batches_per_step, " micro-batches have been taken; save the state at a step boundary");
  return delivered_;
}

void BatchLoader::restore(const LoaderState& state) {
  PONDER_CHECK(state.plan == plan_, ValueError, "BatchLoader::restore: the state belongs to another data plan (saved: ",
               state.plan, "; this loader: ", plan_, ")");
  start(state);
}

}  // namespace ponder::data
