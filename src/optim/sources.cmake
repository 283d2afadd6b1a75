target_sources(ponder_core PRIVATE
)
