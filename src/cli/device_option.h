// The --device option of the inference commands (generate, eval).
#pragma once

#include <string>

#include "tensor/device.h"

namespace ponder::cli {

// "cpu", or "cuda" (the first GPU; a DeviceError when none is visible).
Device parse_device(const std::string& name);

}  // namespace ponder::cli
