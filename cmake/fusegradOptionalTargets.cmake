# The optional companions of fusegrad::fusegrad, made wherever fusegrad is used: in this build
# tree and, installed, by fusegradConfig.cmake on the consumer's machine (their libraries are the
# consumer's, so they are looked up there rather than exported from here).
#
#   fusegrad::blas  fg::nn's matrix products through the BLAS found (cblas.h; Debian: libblas-dev,
#                   with OpenBLAS behind it when libopenblas0-* is installed)
#   fusegrad::cuda  the CUDA runtime and cuBLAS, and nvcc's C++20 flags, for .cu files that include
#                   <fusegrad/cuda.hpp>

function(fusegrad_add_blas_target)
  if(TARGET fusegrad::blas)
    return()
  endif()
  find_package(BLAS QUIET)
  find_path(FUSEGRAD_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES x86_64-linux-gnu)
  if(BLAS_FOUND AND FUSEGRAD_CBLAS_INCLUDE_DIR)
    add_library(fusegrad::blas INTERFACE IMPORTED GLOBAL)
    target_link_libraries(fusegrad::blas INTERFACE fusegrad::fusegrad ${BLAS_LIBRARIES})
    target_include_directories(fusegrad::blas INTERFACE "${FUSEGRAD_CBLAS_INCLUDE_DIR}")
    target_compile_definitions(fusegrad::blas INTERFACE FUSEGRAD_USE_CBLAS=1)
  endif()
endfunction()

function(fusegrad_add_cuda_target)
  if(TARGET fusegrad::cuda)
    return()
  endif()
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    add_library(fusegrad::cuda INTERFACE IMPORTED GLOBAL)
    target_link_libraries(fusegrad::cuda INTERFACE fusegrad::fusegrad CUDA::cudart CUDA::cublas)
    # CMake 3.25 knows no CUDA C++20 dialect, so the flag goes on directly. Extended lambdas and
    # relaxed constexpr let std::array and the op table's lambdas run in device code.
    target_compile_options(fusegrad::cuda INTERFACE
      "$<$<COMPILE_LANGUAGE:CUDA>:-std=c++20;--extended-lambda;--expt-relaxed-constexpr>")
  endif()
endfunction()
