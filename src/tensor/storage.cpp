#include "tensor/storage.h"

#include "tensor/allocator.h"

namespace ponder {

StorageImpl::StorageImpl(Device device, size_t nbytes)
    : data_(allocate_bytes(device, nbytes)), nbytes_(nbytes), device_(device) {}

StorageImpl::StorageImpl(Device device, void* data, size_t nbytes, std::shared_ptr<void> owner)
    : data_(data), nbytes_(nbytes), device_(device), external_owner_(std::move(owner)) {}

StorageImpl::~StorageImpl() {
  if (!external_owner_) free_bytes(device_, data_, nbytes_);
}

}  // namespace ponder
