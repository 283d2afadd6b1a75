target_sources(ponder_core PRIVATE
  train/backbone.cpp
  train/benchmark.cpp
  train/checkpoint.cpp
  train/export.cpp
  train/family.cpp
  train/held_out.cpp
  train/inference.cpp
  train/metrics.cpp
  train/model_eval.cpp
  train/plan.cpp
  train/session.cpp
  train/shard_source.cpp
  train/step_graphs.cpp
  train/stop_signal.cpp
  train/task_source.cpp
  train/trainer.cpp
)
