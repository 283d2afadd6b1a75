target_sources(unit_tests PRIVATE
  models/attractor_test.cpp
  models/generate_test.cpp
  models/hrm_text_test.cpp
  models/learning.cpp
  models/sampling_test.cpp
  models/sst_test.cpp
  models/transformer_test.cpp
)
