// Int8-activation kernels: the weight mode `q8act` (engines/native/matrices.py).
//
// The activations of a call are quantized once, per row and block of 32 values,
// to int8 with an fp32 scale, as llama.cpp does for its CPU dot products:
//
//     d = max|x| / 127,  a_i = round-half-even(x_i * (1 / d))   (a = 0 where d = 0)
//
// and each block's dot product with the weights is computed in integers:
//
//     Q4_1 (w = dw*q + mw, q in 0..15):   dw*d*sum(q*a) + mw*sum(x)
//     Q8_0 (w = dw*q, q in -128..127):    dw*d*sum(q*a)
//
// sum(x) is the block's exact fp32 sum, so Q4_1's min term carries no
// quantization error. Not exact against fp32 activations (|a - x/d| <= 1/2), but
// every output row depends on its own activation row only, and each (row, weight
// row) pair is summed in one fixed order whatever the call's row count, tiling
// or threads: a verification pass gives each row the logits a one-row step
// gives it, which keeps speculative decoding lossless in this mode.
//
// Each instruction set quantizes into a caller-owned `Q8Acts` (plain pointers:
// the per-target translation units must not instantiate shared templates) and
// computes weight rows [n0, n1) from it, so the caller can split the weight
// rows across threads after quantizing once.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

struct Q8Acts {
    size_t rows, K;
    size_t nb;       // blocks per row, K / 32
    size_t fstride;  // floats per row of `sx` and `f`: nb rounded up to a multiple of 16
    size_t dstride;  // floats per row of `dv`: 16 per pair of blocks, (nb + 1) / 2 pairs
    int8_t* q;       // [rows, K] quantized values, element order
    float* d;        // [rows, nb] block scales
    float* dv;       // [rows, dstride] each pair's scales as 16 lanes: d[2p] x 8, d[2p + 1] x 8 (0 past nb)
    float* f;        // [rows, fstride] the activation side of each block's second term (0 past nb):
                     // Q4_1: sum(x); Q8_0: what the instruction set's kernel needs (see each)
};

// Row strides of `f` and `dv` for rows of K values (the caller allocates the arrays).
static inline size_t q8_fstride(size_t K) { return (K / 32 + 15) / 16 * 16; }
static inline size_t q8_dstride(size_t K) { return (K / 32 + 1) / 2 * 16; }

// Rows [r0, r0 + rows) of `a`: the kernels take calls of more rows than their registers hold
// in parts.
static inline Q8Acts q8_rows(const Q8Acts& a, size_t r0, size_t rows) {
    Q8Acts part = a;
    part.rows = rows;
    part.q = a.q + r0 * a.K;
    part.d = a.d + r0 * a.nb;
    part.dv = a.dv + r0 * a.dstride;
    part.f = a.f + r0 * a.fstride;
    return part;
}

// Weight tiles ahead of the one in flight whose bytes the kernels ask for (prefetch): at one or
// a few rows a call streams the weights from memory once, and the hardware prefetcher alone
// leaves the integer products waiting on loads.
constexpr size_t kQ8PrefetchTiles = 8;

// Asks for bytes [lo, hi) of `base` (hints only: addresses past the matrix never fault).
static inline void q8_prefetch(const uint8_t* base, size_t lo, size_t hi) {
    for (size_t line = lo; line < hi; line += 64) __builtin_prefetch(base + line);
}

// A block's scale from its largest magnitude and its sum: NaN where the block holds a NaN or an
// infinity (the sum is then not finite), so that it reaches the output as the fp32 path would
// carry it instead of vanishing into clamped integers.
static inline float q8_scale(float amax, float sum) { return std::isfinite(sum) ? amax / 127.0f : NAN; }

// What x is multiplied by before rounding: 1 / d, and 0 for an all-zero (or NaN) block.
static inline float q8_inverse(float d) { return d != 0.0f && std::isfinite(d) ? 1.0f / d : 0.0f; }

// Zeroes row r's second terms and pair scales, padding included, before its blocks are written.
static inline void q8_clear_row(const Q8Acts& a, size_t r) {
    std::memset(a.f + r * a.fstride, 0, a.fstride * sizeof(float));
    std::memset(a.dv + r * a.dstride, 0, a.dstride * sizeof(float));
}

#define Q8_DECLARE(ns)                                                                                   \
    namespace ns {                                                                                       \
    void quantize(int kind, const float* x, const Q8Acts& acts);                                         \
    void matmul(int kind, const Q8Acts& acts, const uint8_t* qs, const uint16_t* scales, size_t N,       \
                size_t n0, size_t n1, float* out);                                                       \
    }

Q8_DECLARE(q8_generic)
#if defined(__x86_64__)
Q8_DECLARE(q8_avx2)
Q8_DECLARE(q8_avx512vnni)
#endif
