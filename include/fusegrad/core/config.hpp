// fusegrad/core/config.hpp — the only place macros live: host/device marker, SIMD and exception
// detection SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>

// nvcc warns "pointless comparison of unsigned integer with zero" (186) for each `i < R` loop
// instantiated at rank 0, and the library has many. Every header silences it for its own code
// only, between FG_DIAGNOSTICS_BEGIN and FG_DIAGNOSTICS_END (the state applies to templates by
// where they are written).
#if defined(__CUDACC__) && !defined(__clang__)
#define FG_DIAGNOSTICS_BEGIN _Pragma("nv_diagnostic push") _Pragma("nv_diag_suppress 186")
#define FG_DIAGNOSTICS_END _Pragma("nv_diagnostic pop")
#else
#define FG_DIAGNOSTICS_BEGIN
#define FG_DIAGNOSTICS_END
#endif

// One marker for functions that must run on host and CUDA device alike.
#if defined(__CUDACC__)
#define FG_HD __host__ __device__
#else
#define FG_HD
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FG_INLINE inline __attribute__((always_inline))
// A fused loop is compiled as one unit with everything it calls inlined: its body must hold no
// calls (each would spill every live vector register) and its running sums must stay locals.
#define FG_LOOP __attribute__((noinline, flatten))
// For the lambdas a loop calls per element: flatten alone was seen to leave them out of line.
#define FG_LAMBDA_INLINE __attribute__((always_inline))
// Fully unrolls a loop with a small constant trip count (register tiles).
#if defined(__clang__) || defined(__CUDA_ARCH__)
#define FG_UNROLL _Pragma("unroll")
#elif defined(__CUDACC__)
#define FG_UNROLL  // nvcc's host pass rejects GCC's pragma; only the CPU GEMM tiles use it
#else
#define FG_UNROLL _Pragma("GCC unroll 16")
#endif
#else
#define FG_LAMBDA_INLINE
#define FG_UNROLL
#define FG_INLINE inline
#define FG_LOOP
#endif

// SIMD through xsimd when its headers are present and the target has a vector unit xsimd
// drives (SSE/AVX, NEON, SVE, VSX, RVV, WASM); FUSEGRAD_NO_SIMD forces the scalar path. Targets
// without one, such as Cortex-M, land on the scalar path without user effort.
#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2) ||          \
    defined(__ARM_NEON) || defined(_M_ARM64) || defined(__wasm_simd128__) || defined(__VSX__) || \
    defined(__ARM_FEATURE_SVE) || defined(__riscv_vector)
#define FG_TARGET_HAS_VECTOR_UNIT 1
#else
#define FG_TARGET_HAS_VECTOR_UNIT 0
#endif
#if !defined(FUSEGRAD_NO_SIMD) && !defined(__CUDA_ARCH__) && FG_TARGET_HAS_VECTOR_UNIT && \
    __has_include(<xsimd/xsimd.hpp>)
#define FG_HAS_XSIMD 1
#else
#define FG_HAS_XSIMD 0
#endif

// Bare-metal firmware (Cortex-M, or FUSEGRAD_NO_STDIO) links no stdio: printf and abort would
// pull the C library's heap in. Errors then go only to the handler (core/error.hpp).
#if defined(FUSEGRAD_NO_STDIO) || (defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M')
#define FG_HAS_STDIO 0
#else
#define FG_HAS_STDIO 1
#endif

// Bare-metal firmware (Cortex-M, or FUSEGRAD_NO_HEAP) links no heap: the one place the static
// path would allocate (fg::value_and_grad_into given a gradient buffer over a tensor the
// expression reads) raises an error there instead.
#if defined(FUSEGRAD_NO_HEAP) || (defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M')
#define FG_HAS_HEAP 0
#else
#define FG_HAS_HEAP 1
#endif

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define FG_HAS_EXCEPTIONS 1
#else
#define FG_HAS_EXCEPTIONS 0
#endif

namespace fg {
using index_t = std::size_t;
// Expressions of higher rank than this are rejected at compile time.
inline constexpr std::size_t max_rank = 8;
}  // namespace fg
