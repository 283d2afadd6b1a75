target_sources(ponder_core PRIVATE
  data/packing.cpp
)
