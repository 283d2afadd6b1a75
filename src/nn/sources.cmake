target_sources(ponder_core PRIVATE
  nn/module.cpp
)
