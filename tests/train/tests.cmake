target_sources(unit_tests PRIVATE
  train/checkpoint_test.cpp
  train/inference_test.cpp
  train/model_eval_test.cpp
  train/plan_test.cpp
  train/step_graphs_test.cpp
  train/trainer_test.cpp
)
