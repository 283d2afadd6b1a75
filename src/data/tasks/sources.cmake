target_sources(ponder_core PRIVATE
  data/tasks/arithmetic.cpp
  data/tasks/list_tasks.cpp
  data/tasks/maze.cpp
  data/tasks/sudoku.cpp
  data/tasks/task.cpp
  data/tasks/task_options.cpp
)
