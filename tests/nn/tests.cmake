target_sources(unit_tests PRIVATE
  nn/module_test.cpp
)
