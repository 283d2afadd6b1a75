target_sources(unit_tests PRIVATE dist/communicator_test.cpp)

# Two ranks over MPI: dist_tests runs under mpirun -np 2 (mpi_check.sh skips without mpirun).
add_executable(dist_tests dist/mpi_main.cpp dist/mpi_test.cpp)
target_link_libraries(dist_tests PRIVATE ponder_test_support GTest::gtest)
add_test(NAME Dist.TwoRanksOverMpi COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/dist/mpi_check.sh gtest $<TARGET_FILE:dist_tests>)
add_test(NAME Dist.KilledRankEndsTheJob COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/dist/mpi_check.sh killed $<TARGET_FILE:dist_tests>)
add_test(NAME Dist.HungRankEndsTheJob COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/dist/mpi_check.sh hung $<TARGET_FILE:dist_tests>)
add_test(NAME Dist.CliRejectsBadJobs COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/dist/mpi_check.sh cli $<TARGET_FILE:ponder>)
set_tests_properties(Dist.TwoRanksOverMpi Dist.KilledRankEndsTheJob Dist.HungRankEndsTheJob Dist.CliRejectsBadJobs PROPERTIES
                     LABELS unit SKIP_RETURN_CODE 77 PROCESSORS 2)
if(PONDER_SANITIZE)
  # Full unwinding, so that leaks inside OpenMPI's dlopen'ed plugins are attributed to them and
  # matched by the suppressions (the fast unwinder stops at their frames).
  set_tests_properties(Dist.TwoRanksOverMpi Dist.KilledRankEndsTheJob Dist.HungRankEndsTheJob Dist.CliRejectsBadJobs PROPERTIES ENVIRONMENT
                       "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/sanitizer/lsan_mpi.supp:print_suppressions=0;ASAN_OPTIONS=fast_unwind_on_malloc=0")
endif()
