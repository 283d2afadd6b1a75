target_sources(unit_tests PRIVATE
  models/hrm_text_test.cpp
  models/learning.cpp
  models/transformer_test.cpp
)
