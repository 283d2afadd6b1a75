target_sources(ponder_core PRIVATE
  dist/communicator.cpp
  dist/grad_sync.cpp
  dist/launch.cpp
  dist/launch_env.cpp
  dist/mpi_communicator.cpp
  dist/rendezvous.cpp
  dist/spawn.cpp
  dist/zero.cpp
)
# Only the MPI communicator sees MPI's headers (the C API: the deprecated C++ bindings warn);
# everything that links ponder links MPI.
set_source_files_properties(dist/mpi_communicator.cpp PROPERTIES INCLUDE_DIRECTORIES "${MPI_CXX_INCLUDE_DIRS}"
                            COMPILE_DEFINITIONS "OMPI_SKIP_MPICXX=1;MPICH_SKIP_MPICXX=1")
target_link_libraries(ponder_core PUBLIC $<LINK_ONLY:MPI::MPI_CXX>)
if(PONDER_WITH_CUDA)
  target_sources(ponder_core PRIVATE dist/nccl_communicator.cpp)
  target_link_libraries(ponder_core PUBLIC $<LINK_ONLY:CUDA::nccl>)
  set_source_files_properties(dist/nccl_communicator.cpp PROPERTIES INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
endif()
