// Int8-activation kernels with AVX-512 VNNI (q8act.h): two blocks of 32 per 512-bit
// register, products by vpdpbusd (unsigned x signed bytes, summed in fours into 32-bit
// lanes, never saturating). Lanes 0-7 hold the first block's partial sums, 8-15 the
// second's, so one vector of per-lane scales applies both blocks' d.
//
// Q4_1's 4-bit values are unsigned and go in as they are. Q8_0's are signed: they go
// in as q + 128 (a flip of the top bit) and the block's sum(a) * 128 is taken off
// again in the second term (f = -128 * d * sum(a), paired with the weight's d).
#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
// GCC 12's own headers trip these inside _mm512_reduce_add_ps and the 512-to-256 casts
// (their "undefined" upper halves): false positives, silenced for this file only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "q8act.h"
#include "qmatmul.h"

namespace q8_avx512vnni {

namespace {

// The fp16 scales of one weight row as fp32: d[b], and e[b] (0 up to `pad`), the weight side
// of the second term: Q4_1's m, Q8_0's d.
template <int KIND>
inline void row_scales(const uint16_t* src, size_t nb, size_t pad, float* d, float* e) {
    size_t b = 0;
    if constexpr (KIND == QK_Q4_1) {
        // 16 halves [d0 m0 ... d7 m7] -> d0..d7 and m0..m7.
        const __m512i split = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
        for (; b + 8 <= nb; b += 8) {
            const __m512 both = _mm512_permutexvar_ps(
                split, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * b))));
            _mm256_storeu_ps(d + b, _mm512_castps512_ps256(both));
            _mm256_storeu_ps(e + b, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(both), 1)));
        }
        for (; b < nb; ++b) {
            d[b] = _cvtsh_ss(src[2 * b]);
            e[b] = _cvtsh_ss(src[2 * b + 1]);
        }
    } else {
        for (; b + 16 <= nb; b += 16)
            _mm512_storeu_ps(d + b, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + b))));
        for (; b < nb; ++b) d[b] = _cvtsh_ss(src[b]);
        std::memcpy(e, d, nb * sizeof(float));
    }
    for (size_t i = nb; i < pad; ++i) e[i] = 0.0f;
}

// Blocks b and b + 1 of a Q4_1 row (32 bytes) as 64 values in element order: 128-bit
// lanes [b lo nibbles, b hi, b+1 lo, b+1 hi].
inline __m512i q4_pair(const uint8_t* src) {
    const __m512i raw = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
    const __m512i lanes = _mm512_shuffle_i64x2(raw, raw, _MM_SHUFFLE(1, 1, 0, 0));
    const __m512i shifted = _mm512_srlv_epi64(lanes, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
    return _mm512_and_si512(shifted, _mm512_set1_epi8(15));
}

// A last, unpaired block in the low 256 bits (the high ones zero).
inline __m512i q4_single(const uint8_t* src) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    const __m128i low4 = _mm_set1_epi8(15);
    return _mm512_zextsi256_si512(
        _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), low4), _mm_and_si128(raw, low4)));
}

// [d[0] x 8, d[1] x 8]
inline __m512 pair_scale(const float* d) {
    const __m512i index = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    return _mm512_permutexvar_ps(index, _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(d)))));
}

template <int KIND, int R, int NT>
void tile(const Q8Acts& a, const uint8_t* qs, const uint16_t* scales, size_t n, float* out, size_t ldo) {
    constexpr size_t QB = KIND == QK_Q4_1 ? 16 : 32;
    constexpr size_t SB = KIND == QK_Q4_1 ? 2 : 1;
    const size_t nb = a.nb, K = a.K, pairs = nb / 2;
    alignas(64) float dw[NT][QK_MAX_BLOCKS];
    alignas(64) float ew[NT][QK_MAX_BLOCKS];
    for (int t = 0; t < NT; ++t) row_scales<KIND>(scales + (n + t) * nb * SB, nb, a.fstride, dw[t], ew[t]);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    // The tile kQ8PrefetchTiles ahead: its scales now, its values a pair of blocks per step.
    const uint8_t* ahead = qs + (n + kQ8PrefetchTiles * NT) * nb * QB;
    q8_prefetch(reinterpret_cast<const uint8_t*>(scales + (n + kQ8PrefetchTiles * NT) * nb * SB), 0,
                NT * nb * SB * 2);
    __m512 acc[NT][R];
    for (int t = 0; t < NT; ++t)
        for (int r = 0; r < R; ++r) acc[t][r] = _mm512_setzero_ps();
    for (size_t p = 0; p < pairs; ++p) {
        q8_prefetch(ahead, 2 * p * NT * QB, (2 * p + 2) * NT * QB);
        __m512i w[NT];
        __m512 ws[NT];
        for (int t = 0; t < NT; ++t) {
            const uint8_t* src = qs + (n + t) * nb * QB + 2 * p * QB;
            if constexpr (KIND == QK_Q4_1) {
                w[t] = q4_pair(src);
            } else {
                w[t] = _mm512_xor_si512(_mm512_loadu_si512(src), flip);
            }
            ws[t] = pair_scale(dw[t] + 2 * p);
        }
        for (int r = 0; r < R; ++r) {
            const __m512i xq = _mm512_loadu_si512(a.q + r * K + 2 * p * 32);
            const __m512 xs = _mm512_loadu_ps(a.dv + r * a.dstride + p * 16);
            for (int t = 0; t < NT; ++t) {
                const __m512 dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w[t], xq));
                acc[t][r] = _mm512_fmadd_ps(dot, _mm512_mul_ps(ws[t], xs), acc[t][r]);
            }
        }
    }
    if (nb % 2) {
        const size_t b = nb - 1;
        __m512i w[NT];
        __m512 ws[NT];
        for (int t = 0; t < NT; ++t) {
            const uint8_t* src = qs + (n + t) * nb * QB + b * QB;
            if constexpr (KIND == QK_Q4_1) {
                w[t] = q4_single(src);
            } else {
                w[t] = _mm512_zextsi256_si512(_mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)),
                                                               _mm256_set1_epi8(static_cast<char>(0x80))));
            }
            ws[t] = _mm512_set1_ps(dw[t][b]);
        }
        for (int r = 0; r < R; ++r) {
            const __m512i xq = _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + r * K + b * 32)));
            const __m512 xs = _mm512_loadu_ps(a.dv + r * a.dstride + pairs * 16);  // lanes 8-15 are 0
            for (int t = 0; t < NT; ++t) {
                const __m512 dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w[t], xq));
                acc[t][r] = _mm512_fmadd_ps(dot, _mm512_mul_ps(ws[t], xs), acc[t][r]);
            }
        }
    }
    for (int t = 0; t < NT; ++t)
        for (int r = 0; r < R; ++r)
            for (size_t b = 0; b < a.fstride; b += 16)
                acc[t][r] = _mm512_fmadd_ps(_mm512_loadu_ps(ew[t] + b), _mm512_loadu_ps(a.f + r * a.fstride + b),
                                            acc[t][r]);
    for (int t = 0; t < NT; ++t)
        for (int r = 0; r < R; ++r) out[r * ldo + n + t] = _mm512_reduce_add_ps(acc[t][r]);
}

constexpr size_t kRowsMax = 12;

// Weight rows per tile at R activation rows: as many accumulators as the registers hold.
constexpr int tile_rows(int R) { return R <= 2 ? 4 : R <= 8 ? 2 : 1; }

#include "q8act_rows.h"

}  // namespace

void quantize(int kind, const float* x, const Q8Acts& a) {
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (size_t r = 0; r < a.rows; ++r) {
        float* f = a.f + r * a.fstride;
        float* dv = a.dv + r * a.dstride;
        q8_clear_row(a, r);
        for (size_t b = 0; b < a.nb; ++b) {
            const float* xb = x + r * a.K + b * 32;
            const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
            const float sum = _mm512_reduce_add_ps(_mm512_add_ps(v0, v1));
            const float d = q8_scale(amax, sum);
            const float inv = q8_inverse(d);
            const __m512 scale = _mm512_set1_ps(inv);
            const __m512i q0 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v0, scale), lo), hi));
            const __m512i q1 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v1, scale), lo), hi));
            int8_t* q = a.q + r * a.K + b * 32;
            _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(q0));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtsepi32_epi8(q1));
            a.d[r * a.nb + b] = d;
            _mm256_storeu_ps(dv + b / 2 * 16 + b % 2 * 8, _mm256_set1_ps(d));
            if (kind == QK_Q4_1) {
                f[b] = sum;
            } else {
                const int qsum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
                f[b] = -128.0f * d * static_cast<float>(qsum);
            }
        }
    }
}

}  // namespace q8_avx512vnni
#endif
