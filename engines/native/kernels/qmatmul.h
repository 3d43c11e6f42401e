// Shared declarations of the quantized kernels (see qmatmul_impl.h).
#pragma once

#include <cstddef>
#include <cstdint>

enum { QK_Q4_1 = 0, QK_Q8_0 = 1 };

// The repacked layout of an [N, K] matrix (K a multiple of 32, at most
// 32 * QK_MAX_BLOCKS), holding exactly the values of GGUF's blocks:
//   qs:     N rows of K/32 blocks of values. Q4_1: 16 bytes per block, byte i
//           holding element i (low nibble) and element i + 16 (high nibble), as
//           in GGUF. Q8_0: 32 signed bytes per block.
//   scales: N rows of fp16 scales. Q4_1: d then m per block; Q8_0: d per block.
// A Q4_1 weight is d*q + m, a Q8_0 weight d*q.
#define QK_MAX_BLOCKS 1024

// One instruction set's kernels. Each computes weight rows [n0, n1) only, so the
// caller can split a call across threads by rows of the weight.
#define QK_DECLARE(ns)                                                                                   \
    namespace ns {                                                                                       \
    void matmul(int kind, const float* x, size_t rows, size_t K, const uint8_t* qs, const uint16_t* scales, \
                size_t N, size_t n0, size_t n1, float* out);                                                 \
    void dequantize(int kind, const uint8_t* qs, const uint16_t* scales, size_t K, size_t n0, size_t n1,       \
                    float* out);                                                                             \
    }

QK_DECLARE(qk_generic)
#if defined(__x86_64__)
QK_DECLARE(qk_avx2)
QK_DECLARE(qk_avx512)
#endif
