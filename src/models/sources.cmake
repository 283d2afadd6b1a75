target_sources(ponder_core PRIVATE
  models/decode.cpp
  models/language_model.cpp
  models/transformer/transformer.cpp
)
