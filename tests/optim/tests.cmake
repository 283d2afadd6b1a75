target_sources(unit_tests PRIVATE
  optim/ema_clip_test.cpp
  optim/mixed_precision_test.cpp
  optim/muon_test.cpp
  optim/optimizer_test.cpp
  optim/schedule_test.cpp
)
