target_sources(ponder_core PRIVATE
  models/batch.cpp
  models/decode.cpp
  models/hrm_text/hrm_text.cpp
  models/language_model.cpp
  models/transformer/transformer.cpp
)
