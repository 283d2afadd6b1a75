target_sources(unit_tests PRIVATE
  data/arithmetic_test.cpp
  data/hdf5_check_test.cpp
  data/hf_tokenizer_test.cpp
  data/loader_test.cpp
  data/maze_test.cpp
  data/packing_test.cpp
  data/prepare_test.cpp
  data/sampler_test.cpp
  data/shard_test.cpp
  data/sudoku_test.cpp
  data/tasks_test.cpp
  data/tokenizer_test.cpp
)
