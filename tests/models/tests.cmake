target_sources(unit_tests PRIVATE
  models/transformer_test.cpp
)
