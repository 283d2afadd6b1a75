target_sources(ponder_core PRIVATE
  solvers/fixed_point.cpp
  solvers/implicit.cpp
)
