target_sources(unit_tests PRIVATE
  nn/attention_layer_test.cpp
  nn/embedding_norm_test.cpp
  nn/init_test.cpp
  nn/kv_cache_test.cpp
  nn/linear_op_test.cpp
  nn/linear_test.cpp
  nn/mlp_test.cpp
  nn/module_test.cpp
  nn/transformer_test.cpp
)
