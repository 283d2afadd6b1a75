target_sources(unit_tests PRIVATE
  data/packing_test.cpp
)
