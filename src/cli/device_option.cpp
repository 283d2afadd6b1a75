#include "cli/device_option.h"

#include "tensor/error.h"

namespace ponder::cli {

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::cpu();
  PONDER_CHECK(cuda_device_count() > 0, DeviceError, "--device cuda: no CUDA device is visible");
  return Device::cuda(0);
}

}  // namespace ponder::cli
