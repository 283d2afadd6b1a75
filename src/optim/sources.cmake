target_sources(ponder_core PRIVATE
  optim/adam.cpp
  optim/clip.cpp
  optim/ema.cpp
  optim/grad_buffer.cpp
  optim/muon.cpp
  optim/optimizer.cpp
  optim/schedule.cpp
  optim/sgd.cpp
)
