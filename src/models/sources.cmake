target_sources(ponder_core PRIVATE
  models/language_model.cpp
  models/transformer/transformer.cpp
)
