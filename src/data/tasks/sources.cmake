target_sources(ponder_core PRIVATE
  data/tasks/list_tasks.cpp
  data/tasks/task.cpp
)
