target_sources(ponder_core PRIVATE
  models/attractor/attractor.cpp
  models/attractor/fp_head.cpp
  models/batch.cpp
  models/decode.cpp
  models/generate.cpp
  models/hrm_text/hrm_text.cpp
  models/language_model.cpp
  models/sampling.cpp
  models/sst/sst.cpp
  models/transformer/transformer.cpp
)
