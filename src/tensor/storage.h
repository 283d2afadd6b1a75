// Storage: one allocation shared by a tensor and all of its views. The version counter lets
// autograd notice when a tensor saved for backward was modified in place.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

#include "tensor/device.h"

namespace ponder {

class StorageImpl {
 public:
  StorageImpl(Device device, size_t nbytes);
  // Wraps memory owned elsewhere (e.g. a mapped file); `owner` keeps it alive.
  StorageImpl(Device device, void* data, size_t nbytes, std::shared_ptr<void> owner);
  ~StorageImpl();
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint32_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::shared_ptr<void> external_owner_;
  std::atomic<uint32_t> version_{0};
};

using Storage = std::shared_ptr<StorageImpl>;

}  // namespace ponder
