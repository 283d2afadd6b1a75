target_sources(ponder_core PRIVATE
  io/atomic_file.cpp
  io/checksum.cpp
  io/config_reader.cpp
  io/recipe.cpp
  io/safetensors.cpp
)
