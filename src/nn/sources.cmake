target_sources(ponder_core PRIVATE
  nn/attention.cpp
  nn/embedding.cpp
  nn/init.cpp
  nn/kv_cache.cpp
  nn/linear.cpp
  nn/mlp.cpp
  nn/module.cpp
  nn/norm.cpp
  nn/transformer.cpp
)
