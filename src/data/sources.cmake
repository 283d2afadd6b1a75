target_sources(ponder_core PRIVATE
  data/dataset.cpp
  data/hdf5_check.cpp
  data/hf_tokenizer.cpp
  data/inspect.cpp
  data/loader.cpp
  data/packing.cpp
  data/prepare.cpp
  data/sampler.cpp
  data/sentencepiece_model.cpp
  data/shard.cpp
  data/tokenizer.cpp
)
# HDF5 (shards) and SentencePiece (tokenizer); HDF5's headers are public so tests can hand-craft files.
target_include_directories(ponder_core SYSTEM PUBLIC ${HDF5_INCLUDE_DIRS})
target_link_libraries(ponder_core PUBLIC ${HDF5_LIBRARIES} SentencePiece::SentencePiece)
