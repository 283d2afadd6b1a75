target_sources(unit_tests PRIVATE
  solvers/fixed_point_test.cpp
  solvers/implicit_test.cpp
)
