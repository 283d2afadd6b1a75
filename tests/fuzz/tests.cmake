# Fuzz targets' seed corpora as plain regression tests (every build).
target_sources(unit_tests PRIVATE fuzz/entries.cpp fuzz/corpus_test.cpp)

# libFuzzer targets (PONDER_FUZZ=ON, clang): fuzz_<name> for each entry in fuzz/entries.cpp; scripts/fuzz runs them.
if(PONDER_FUZZ)
  foreach(target safetensors recipe shard jsonl trainer_state)
    add_executable(fuzz_${target} fuzz/fuzz_main.cpp fuzz/entries.cpp)
    target_include_directories(fuzz_${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    target_compile_definitions(fuzz_${target} PRIVATE PONDER_FUZZ_TARGET="${target}")
    target_link_libraries(fuzz_${target} PRIVATE ponder_core)
    target_compile_options(fuzz_${target} PRIVATE ${PONDER_FUZZ_FLAGS})
    target_link_options(fuzz_${target} PRIVATE -fsanitize=fuzzer)
  endforeach()
endif()
