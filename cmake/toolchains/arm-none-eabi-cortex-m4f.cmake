# Cross toolchain for a Cortex-M4F with Debian's gcc-arm-none-eabi (bare metal, newlib headers).
#   cmake -S examples/embedded/cortex_m -B build/cortex_m \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-none-eabi-cortex-m4f.cmake
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
# No OS to run a test program on: check the compiler by building a static library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(_fg_cpu "-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard")
set(CMAKE_C_FLAGS_INIT "${_fg_cpu}")
# -fno-math-errno: sqrtf becomes the FPU's vsqrt instead of a libm call that sets errno.
set(CMAKE_CXX_FLAGS_INIT "${_fg_cpu} -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-math-errno")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${_fg_cpu} -nostartfiles -Wl,--gc-sections")

# Find only the target's own libraries and packages, never the host's (no host xsimd, no
# /usr/include): fusegrad then builds its scalar path.
set(CMAKE_FIND_ROOT_PATH /usr/lib/arm-none-eabi)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
