target_sources(unit_tests PRIVATE
  models/hrm_text_test.cpp
  models/transformer_test.cpp
)
