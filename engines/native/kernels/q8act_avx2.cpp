// Int8-activation kernels with AVX2 (q8act.h): one block of 32 per 256-bit register,
// products by vpmaddubsw (unsigned x signed bytes into 16-bit pairs) and vpmaddwd.
// For AMD EPYC and other CPUs without AVX-512 VNNI.
//
// Q4_1's 4-bit values are unsigned, so they go in vpmaddubsw's unsigned operand as
// they are (pair sums at most 2 * 15 * 127). Q8_0's are signed: the unsigned
// operand is |q| and the activation takes q's sign (vpsignb), at most
// 2 * 128 * 127 < 32767, so no pair saturates.
#if defined(__x86_64__)
#pragma GCC target("avx2,fma,f16c")

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "q8act.h"
#include "qmatmul.h"

namespace q8_avx2 {

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The fp16 scales of one weight row as fp32: d[b] and, for Q4_1, m[b] (0 up to `pad`).
template <int KIND>
inline void row_scales(const uint16_t* src, size_t nb, size_t pad, float* d, float* m) {
    size_t b = 0;
    if constexpr (KIND == QK_Q4_1) {
        for (; b + 8 <= nb; b += 8) {
            const __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * b)));
            const __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * b + 8)));
            // [d0 m0 d1 m1 d2 m2 d3 m3 | d4 ...]: even lanes are d, odd lanes m; the shuffle keeps
            // 64-bit halves per 128-bit lane, the permute puts them back in block order.
            const __m256 ds = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
            const __m256 ms = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
            _mm256_storeu_ps(d + b, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ds), 0xD8)));
            _mm256_storeu_ps(m + b, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ms), 0xD8)));
        }
        for (; b < nb; ++b) {
            d[b] = _cvtsh_ss(src[2 * b]);
            m[b] = _cvtsh_ss(src[2 * b + 1]);
        }
        for (size_t i = nb; i < pad; ++i) m[i] = 0.0f;
    } else {
        for (; b + 8 <= nb; b += 8)
            _mm256_storeu_ps(d + b, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + b))));
        for (; b < nb; ++b) d[b] = _cvtsh_ss(src[b]);
        (void)m;
        (void)pad;
    }
}

// out[r, n .. n + NT) for R activation rows: each (row, weight row) pair sums its blocks in
// order, then the second term, whatever R and NT are (q8act.h: row results are call-independent).
template <int KIND, int R, int NT>
void tile(const Q8Acts& a, const uint8_t* qs, const uint16_t* scales, size_t n, float* out, size_t ldo) {
    constexpr size_t QB = KIND == QK_Q4_1 ? 16 : 32;
    constexpr size_t SB = KIND == QK_Q4_1 ? 2 : 1;
    const size_t nb = a.nb, K = a.K;
    alignas(32) float dw[NT][QK_MAX_BLOCKS];
    alignas(32) float mw[NT][QK_MAX_BLOCKS];
    for (int t = 0; t < NT; ++t) row_scales<KIND>(scales + (n + t) * nb * SB, nb, a.fstride, dw[t], mw[t]);
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i low4 = _mm256_set1_epi8(15);
    const __m256i nibble_shift = _mm256_set_epi64x(4, 4, 0, 0);
    // The tile kQ8PrefetchTiles ahead: its scales now, its values a block per step.
    const uint8_t* ahead = qs + (n + kQ8PrefetchTiles * NT) * nb * QB;
    q8_prefetch(reinterpret_cast<const uint8_t*>(scales + (n + kQ8PrefetchTiles * NT) * nb * SB), 0,
                NT * nb * SB * 2);
    __m256 acc[NT][R];
    for (int t = 0; t < NT; ++t)
        for (int r = 0; r < R; ++r) acc[t][r] = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; ++b) {
        q8_prefetch(ahead, b * NT * QB, (b + 1) * NT * QB);
        __m256i w[NT], wabs[NT];
        for (int t = 0; t < NT; ++t) {
            const uint8_t* src = qs + (n + t) * nb * QB + b * QB;
            if constexpr (KIND == QK_Q4_1) {
                // [bytes | bytes] shifted by 0 and 4 bits per half: the 32 values in element order.
                const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
                w[t] = _mm256_and_si256(_mm256_srlv_epi64(raw, nibble_shift), low4);
            } else {
                w[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
                wabs[t] = _mm256_abs_epi8(w[t]);
            }
        }
        for (int r = 0; r < R; ++r) {
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + r * K + b * 32));
            const __m256 xs = _mm256_broadcast_ss(a.d + r * nb + b);
            for (int t = 0; t < NT; ++t) {
                __m256i pairs;
                if constexpr (KIND == QK_Q4_1) {
                    pairs = _mm256_maddubs_epi16(w[t], xq);
                } else {
                    pairs = _mm256_maddubs_epi16(wabs[t], _mm256_sign_epi8(xq, w[t]));
                }
                const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
                acc[t][r] = _mm256_fmadd_ps(dot, _mm256_mul_ps(_mm256_broadcast_ss(&dw[t][b]), xs), acc[t][r]);
            }
        }
    }
    if constexpr (KIND == QK_Q4_1) {
        for (int t = 0; t < NT; ++t)
            for (int r = 0; r < R; ++r)
                for (size_t b = 0; b < a.fstride; b += 8)
                    acc[t][r] = _mm256_fmadd_ps(_mm256_loadu_ps(mw[t] + b),
                                                _mm256_loadu_ps(a.f + r * a.fstride + b), acc[t][r]);
    }
    for (int t = 0; t < NT; ++t)
        for (int r = 0; r < R; ++r) out[r * ldo + n + t] = hsum(acc[t][r]);
}

constexpr size_t kRowsMax = 8;

// Weight rows per tile at R activation rows: as many accumulators as the registers hold.
constexpr int tile_rows(int R) { return R == 1 ? 4 : R <= 4 ? 2 : 1; }

#include "q8act_rows.h"

}  // namespace

void quantize(int kind, const float* x, const Q8Acts& a) {
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t r = 0; r < a.rows; ++r) {
        float* f = a.f + r * a.fstride;
        float* dv = a.dv + r * a.dstride;
        q8_clear_row(a, r);
        for (size_t b = 0; b < a.nb; ++b) {
            const float* xb = x + r * a.K + b * 32;
            __m256 v[4];
            for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(xb + 8 * i);
            const float amax = hmax(_mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                                                  _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3]))));
            const float sum = hsum(_mm256_add_ps(_mm256_add_ps(v[0], v[1]), _mm256_add_ps(v[2], v[3])));
            const float d = q8_scale(amax, sum);
            const float inv = q8_inverse(d);
            const __m256 scale = _mm256_set1_ps(inv);
            __m256i q[4];
            for (int i = 0; i < 4; ++i)
                q[i] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[i], scale), lo), hi));
            // Packing works within 128-bit lanes: the permute restores element order.
            const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.q + r * a.K + b * 32),
                                _mm256_permutevar8x32_epi32(bytes, order));
            a.d[r * a.nb + b] = d;
            for (int i = 0; i < 8; ++i) dv[b / 2 * 16 + b % 2 * 8 + i] = d;
            if (kind == QK_Q4_1) f[b] = sum;  // Q8_0's sign trick needs no second term
        }
    }
}

}  // namespace q8_avx2
#endif
