# cuDNN and NCCL are not part of FindCUDAToolkit; look for them next to the toolkit and in the
# system paths, and define CUDA::cudnn and CUDA::nccl.
set(_ponder_cuda_hints ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib64)
find_library(CUDNN_LIBRARY cudnn HINTS ${_ponder_cuda_hints})
find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
find_library(NCCL_LIBRARY nccl HINTS ${_ponder_cuda_hints})
find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CudaExtras
  REQUIRED_VARS CUDNN_LIBRARY CUDNN_INCLUDE_DIR NCCL_LIBRARY NCCL_INCLUDE_DIR)
foreach(_lib cudnn nccl)
  string(TOUPPER ${_lib} _up)
  if(NOT TARGET CUDA::${_lib})
    add_library(CUDA::${_lib} INTERFACE IMPORTED)
    set_target_properties(CUDA::${_lib} PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${${_up}_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "${${_up}_LIBRARY}")
  endif()
endforeach()
