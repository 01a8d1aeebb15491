# Helpers for fusegrad's own targets (tests, examples, benchmarks). Not installed.

include("${CMAKE_CURRENT_LIST_DIR}/fusegradFindXsimd.cmake")

# fusegrad_target_defaults(<target>)
#   Links fusegrad::fusegrad and adds the warning set and FUSEGRAD_ARCH_FLAGS. The arch flags go
#   only on targets built in this tree, never on the fusegrad INTERFACE target, so consumers keep
#   full control over their own -m flags.
function(fusegrad_target_defaults tgt)
  get_target_property(_type ${tgt} TYPE)
  if(_type STREQUAL "INTERFACE_LIBRARY")
    set(_scope INTERFACE)
  else()
    set(_scope PRIVATE)
    set_target_properties(${tgt} PROPERTIES CXX_EXTENSIONS OFF) # -std=c++20, not gnu++20
  endif()
  target_link_libraries(${tgt} ${_scope} fusegrad::fusegrad)
  target_compile_features(${tgt} ${_scope} cxx_std_20)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${tgt} ${_scope} -Wall -Wextra -Wpedantic)
    if(FUSEGRAD_WERROR)
      target_compile_options(${tgt} ${_scope} -Werror)
    endif()
  elseif(MSVC)
    target_compile_options(${tgt} ${_scope} /W4 /permissive-)
    if(FUSEGRAD_WERROR)
      target_compile_options(${tgt} ${_scope} /WX)
    endif()
  endif()
  if(FUSEGRAD_ARCH_FLAGS)
    target_compile_options(${tgt} ${_scope} ${FUSEGRAD_ARCH_FLAGS})
  endif()
endfunction()

# fusegrad_cuda_target_defaults(<target>)
#   For a target with .cu sources: links fusegrad::cuda, passes FUSEGRAD_ARCH_FLAGS and the warning
#   set to the host compiler, and makes nvcc's own warnings errors under FUSEGRAD_WERROR.
function(fusegrad_cuda_target_defaults tgt)
  target_link_libraries(${tgt} PRIVATE fusegrad::cuda)
  set_target_properties(${tgt} PROPERTIES CXX_EXTENSIONS OFF CUDA_EXTENSIONS OFF)
  set(_host_flags -Wall -Wextra ${FUSEGRAD_ARCH_FLAGS})
  string(REPLACE ";" "," _host_flags "${_host_flags}")
  target_compile_options(${tgt} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${_host_flags}>"
                                        "$<$<COMPILE_LANGUAGE:CXX>:${FUSEGRAD_ARCH_FLAGS}>")
  if(FUSEGRAD_WERROR)
    target_compile_options(${tgt} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>")
  endif()
  # 445: nvcc warns that a lambda with an explicit template parameter list (`[]<class Op>()`, as
  # the op-table tests iterate) does not use it in its parameter types. That is the point of it.
  target_compile_options(${tgt} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:-diag-suppress=445>")
endfunction()
