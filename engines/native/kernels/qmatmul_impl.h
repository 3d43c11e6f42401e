// Matrix products straight from GGUF's quantized blocks, for one instruction set.
//
// Included once per instruction set by qmatmul_<isa>.cpp, each with its own
// `#pragma GCC target`, QK_NS (the namespace) and QK_VW (floats per vector
// register: 16 for AVX-512, 8 for AVX2, 4 for the portable build) defined. The
// code is written with GCC vector extensions, so one text serves every width.
//
// Exactness: a Q4_1 weight is d*q + m and a Q8_0 weight d*q, with d and m fp16
// and q a 4- or 8-bit integer; each is exactly representable in fp32, so
// dequantizing in registers gives the same weights as GGUF's reference
// dequantization. Activations and accumulation stay fp32: the products differ
// from a dense fp32 matmul only in the order of the additions.
//
// Shape of the work: every block of weights is dequantized into registers once
// and applied to every activation row of the call (up to QK_RMAX rows at a time,
// as many as the registers hold), so a verification pass of k+1 rows or a
// batched decode step reads each weight once instead of once per row.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "qmatmul.h"

#if QK_VW > 4
#include <immintrin.h>
#endif

namespace QK_NS {

typedef float vf __attribute__((vector_size(QK_VW * 4)));
typedef uint8_t vb __attribute__((vector_size(QK_VW)));
typedef int8_t vsb __attribute__((vector_size(QK_VW)));
typedef int32_t vi __attribute__((vector_size(QK_VW * 4)));

constexpr int VW = QK_VW;

static inline vf load(const float* p) {
    vf v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

static inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

static inline float hsum(vf v) {
    // Pairwise halving: log2(VW) vector adds instead of VW scalar ones.
    float lanes[VW];
    store(lanes, v);
    for (int width = VW / 2; width > 0; width /= 2)
        for (int i = 0; i < width; ++i) lanes[i] += lanes[i + width];
    return lanes[0];
}

// VW bytes from p, zero- or sign-extended to 32-bit lanes. GCC leaves byte-to-int
// vector conversions scalar, so the wide instruction sets name their instruction.
static inline vi widen_u8(const uint8_t* p) {
#if QK_VW == 16
    return (vi)_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#elif QK_VW == 8
    return (vi)_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
#else
    vb b;
    std::memcpy(&b, p, VW);
    return __builtin_convertvector(b, vi);
#endif
}

static inline vi widen_s8(const uint8_t* p) {
#if QK_VW == 16
    return (vi)_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#elif QK_VW == 8
    return (vi)_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
#else
    vsb b;
    std::memcpy(&b, p, VW);
    return __builtin_convertvector(b, vi);
#endif
}

static inline float half(const uint8_t* p) {
    _Float16 h;
    std::memcpy(&h, p, 2);
    return static_cast<float>(h);
}

// Every kernel works on the repacked layout (qmatmul.h): a row's quantized values
// contiguous, its fp16 scales (Q4_1: d and m per block; Q8_0: d) in a separate
// array. The scales of the rows in flight are converted to fp32 once, so the
// inner loop broadcasts them straight from memory.
template <int KIND>
static inline void convert_scales(const uint16_t* src, size_t nb, float* dst) {
    const size_t n = KIND == QK_Q4_1 ? 2 * nb : nb;
    size_t i = 0;
#if QK_VW > 4
    // Eight at a time with F16C: short rows (18 blocks for SmolLM2's 576 columns) would
    // otherwise spend a third of their time here.
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
#endif
    for (; i < n; ++i) dst[i] = half(reinterpret_cast<const uint8_t*>(src + i));
}

// The 32 weights of block `b` of a row as 32/VW vectors, in element order.
template <int KIND>
static inline void dequant(const uint8_t* qs, const float* sc, size_t b, vf* w) {
    if constexpr (KIND == QK_Q4_1) {
        const float d = sc[2 * b], m = sc[2 * b + 1];
        constexpr int half_vectors = 16 / VW;
        for (int j = 0; j < half_vectors; ++j) {
            // Byte i holds element i in its low nibble and element i + 16 in its high one.
            const vi wide = widen_u8(qs + b * 16 + j * VW);
            w[j] = __builtin_convertvector(wide & 15, vf) * d + m;
            w[half_vectors + j] = __builtin_convertvector(wide >> 4, vf) * d + m;
        }
    } else {
        const float d = sc[b];
        for (int j = 0; j < 32 / VW; ++j)
            w[j] = __builtin_convertvector(widen_s8(qs + b * 32 + j * VW), vf) * d;
    }
}

// out[r, n] = sum_k x[r, k] * W[n, k] for r < R and n in [n0, n1), NT weight rows
// at a time. Two accumulators per (row, weight row) keep enough independent FMA
// chains in flight when R is small.
constexpr size_t kPrefetchTiles = 8;

template <int KIND, int R, int NT>
static void rows_kernel(const float* x, size_t K, const uint8_t* qs, const uint16_t* scales, size_t n0,
                        size_t n1, float* out, size_t ldo) {
    constexpr int NV = 32 / VW;
    constexpr size_t QB = KIND == QK_Q4_1 ? 16 : 32;  // bytes of values per block
    constexpr size_t SB = KIND == QK_Q4_1 ? 2 : 1;    // scales per block
    const size_t nb = K / 32;
    float sc[NT][QK_MAX_BLOCKS * 2];
    size_t n = n0;
    for (; n + NT <= n1; n += NT) {
        for (int t = 0; t < NT; ++t) convert_scales<KIND>(scales + (n + t) * nb * SB, nb, sc[t]);
        vf acc[NT][R][2] = {};
        // The weights stream from memory once per call: ask for the tiles a few ahead (one
        // line of values per block step, the next tiles' scales up front) so the loads the
        // FMAs wait on are already in cache.
        const uint8_t* ahead = qs + (n + kPrefetchTiles * NT) * nb * QB;
        const uint8_t* ahead_end = qs + n1 * nb * QB;
        const uint8_t* scales_ahead = reinterpret_cast<const uint8_t*>(scales + (n + kPrefetchTiles * NT) * nb * SB);
        for (size_t line = 0; line < NT * nb * SB * 2; line += 64) __builtin_prefetch(scales_ahead + line);
        for (size_t b = 0; b < nb; ++b) {
            for (size_t line = b * NT * QB; line < (b + 1) * NT * QB; line += 64)
                if (ahead + line < ahead_end) __builtin_prefetch(ahead + line);
            vf wv[NT][NV];
            for (int t = 0; t < NT; ++t) dequant<KIND>(qs + (n + t) * nb * QB, sc[t], b, wv[t]);
            for (int r = 0; r < R; ++r) {
                const float* xb = x + r * K + b * 32;
                for (int v = 0; v < NV; ++v) {
                    const vf xv = load(xb + v * VW);
                    for (int t = 0; t < NT; ++t) acc[t][r][v & 1] += wv[t][v] * xv;
                }
            }
        }
        for (int t = 0; t < NT; ++t)
            for (int r = 0; r < R; ++r) out[r * ldo + n + t] = hsum(acc[t][r][0] + acc[t][r][1]);
    }
    // Leftover weight rows, one at a time.
    for (; n < n1; ++n) {
        convert_scales<KIND>(scales + n * nb * SB, nb, sc[0]);
        vf acc[R][2] = {};
        for (size_t b = 0; b < nb; ++b) {
            vf wv[NV];
            dequant<KIND>(qs + n * nb * QB, sc[0], b, wv);
            for (int r = 0; r < R; ++r) {
                const float* xb = x + r * K + b * 32;
                for (int v = 0; v < NV; ++v) acc[r][v & 1] += wv[v] * load(xb + v * VW);
            }
        }
        for (int r = 0; r < R; ++r) out[r * ldo + n] = hsum(acc[r][0] + acc[r][1]);
    }
}

// Dispatch on the row count: R is a template argument so the accumulators live in registers.
template <int KIND>
static void rows_any(const float* x, size_t rows, size_t K, const uint8_t* qs, const uint16_t* scales,
                     size_t n0, size_t n1, float* out, size_t ldo) {
    switch (rows) {
#define QK_CASE(R, NT)                                                     \
    case R:                                                                \
        rows_kernel<KIND, R, NT>(x, K, qs, scales, n0, n1, out, ldo);      \
        return;
        QK_CASE(1, QK_NT1)
        QK_CASE(2, QK_NT2)
        QK_CASE(3, 1)
        QK_CASE(4, 1)
#if QK_RMAX >= 5
        QK_CASE(5, 1)
#endif
#if QK_RMAX >= 6
        QK_CASE(6, 1)
        QK_CASE(7, 1)
        QK_CASE(8, 1)
#endif
#if QK_RMAX >= 12
        QK_CASE(9, 1)
        QK_CASE(10, 1)
        QK_CASE(11, 1)
        QK_CASE(12, 1)
#endif
#undef QK_CASE
        default:
            break;
    }
}

void matmul(int kind, const float* x, size_t rows, size_t K, const uint8_t* qs, const uint16_t* scales,
            size_t N, size_t n0, size_t n1, float* out) {
    // More rows than the registers hold: in chunks of QK_RMAX, each chunk reading this
    // thread's slice of weights again (from cache when the slice is small).
    for (size_t r0 = 0; r0 < rows; r0 += QK_RMAX) {
        const size_t r = rows - r0 < QK_RMAX ? rows - r0 : QK_RMAX;
        if (kind == QK_Q4_1) {
            rows_any<QK_Q4_1>(x + r0 * K, r, K, qs, scales, n0, n1, out + r0 * N, N);
        } else {
            rows_any<QK_Q8_0>(x + r0 * K, r, K, qs, scales, n0, n1, out + r0 * N, N);
        }
    }
}

template <int KIND>
static void dequant_rows(const uint8_t* qs, const uint16_t* scales, size_t K, size_t n0, size_t n1,
                         float* out) {
    constexpr size_t QB = KIND == QK_Q4_1 ? 16 : 32;
    constexpr size_t SB = KIND == QK_Q4_1 ? 2 : 1;
    const size_t nb = K / 32;
    float sc[QK_MAX_BLOCKS * 2];
    vf wv[32 / VW];
    for (size_t n = n0; n < n1; ++n) {
        convert_scales<KIND>(scales + n * nb * SB, nb, sc);
        for (size_t b = 0; b < nb; ++b) {
            dequant<KIND>(qs + n * nb * QB, sc, b, wv);
            for (int v = 0; v < 32 / VW; ++v) store(out + (n - n0) * K + b * 32 + v * VW, wv[v]);
        }
    }
}

// out[n - n0] = W[n] in fp32 for n in [n0, n1).
void dequantize(int kind, const uint8_t* qs, const uint16_t* scales, size_t K, size_t n0, size_t n1,
                float* out) {
    if (kind == QK_Q4_1) {
        dequant_rows<QK_Q4_1>(qs, scales, K, n0, n1, out);
    } else {
        dequant_rows<QK_Q8_0>(qs, scales, K, n0, n1, out);
    }
}

}  // namespace QK_NS
