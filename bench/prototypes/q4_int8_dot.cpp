// Prototype, not part of the engine (issue 13's plan, docs/benchmarks.md "Int8 activations"):
// one Q4_1 matrix (SmolLM2's w1 shape, random blocks) times R activation rows, one thread,
// two ways, each dequantizing a weight block once for all R rows:
//   fp32: the block dequantized to fp32 and FMA'd with fp32 activations (the engine's method,
//         without its tiling over several weight rows);
//   int8: activations quantized per row and 32-value block to int8 (scale s, exact block sum),
//         dot products with the 4-bit values by AVX-512 VNNI (vpdpbusd); Q4_1's w = d*q + m
//         gives sum(w*x) = d*s*sum(q*xq) + m*sum(x). Each row's result depends only on that row,
//         so speculation would stay lossless; it is not exact against fp32.
// Needs AVX-512 VNNI (the Xeon; the EPYC would need vpmaddubsw + vpmaddwd instead):
//   g++ -O2 -march=native -o /tmp/q4_int8_dot bench/prototypes/q4_int8_dot.cpp && /tmp/q4_int8_dot
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <vector>
#include <algorithm>

constexpr int N = 1536, K = 576, NB = K / 32;

struct W { std::vector<uint8_t> qs; std::vector<float> d, m; };

template <int R>
void fp32_kernel(const W& w, const float* x, float* out) {
    for (int n = 0; n < N; ++n) {
        __m512 acc[R][2];
        for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        for (int b = 0; b < NB; ++b) {
            const uint8_t* q = &w.qs[(size_t(n) * NB + b) * 16];
            __m512i wide = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)q));
            __m512 dv = _mm512_set1_ps(w.d[n * NB + b]), mv = _mm512_set1_ps(w.m[n * NB + b]);
            __m512 lo = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(wide, _mm512_set1_epi32(15))), dv, mv);
            __m512 hi = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(wide, 4)), dv, mv);
            for (int r = 0; r < R; ++r) {
                const float* xb = x + r * K + b * 32;
                acc[r][0] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xb), acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xb + 16), acc[r][1]);
            }
        }
        for (int r = 0; r < R; ++r) out[r * N + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
    }
}

// x quantized per row and 32-block: xq int8, scale s, and the block's sum of x (exact fp32).
struct XQ { std::vector<int8_t> q; std::vector<float> s, sum; };

XQ quantize(const float* x, int rows) {
    XQ o; o.q.resize(rows * K); o.s.resize(rows * NB); o.sum.resize(rows * NB);
    for (int r = 0; r < rows; ++r) for (int b = 0; b < NB; ++b) {
        const float* xb = x + r * K + b * 32;
        float amax = 0, sum = 0;
        for (int i = 0; i < 32; ++i) { amax = std::max(amax, std::fabs(xb[i])); sum += xb[i]; }
        float s = amax / 127.f, inv = s ? 1.f / s : 0.f;
        for (int i = 0; i < 32; ++i) o.q[r * K + b * 32 + i] = (int8_t)std::lrint(xb[i] * inv);
        o.s[r * NB + b] = s; o.sum[r * NB + b] = sum;
    }
    return o;
}

// x scales as vectors, per row and block pair: lanes 0-7 block b's scale, 8-15 block b+1's.
struct XV { std::vector<float> sv; };  // 16 floats per (row, block pair)
XV xvecs(const XQ& q, int rows) {
    XV o; o.sv.resize(size_t(rows) * NB / 2 * 16);
    for (int r = 0; r < rows; ++r) for (int b = 0; b < NB; ++b)
        for (int i = 0; i < 8; ++i) o.sv[(size_t(r) * NB / 2 + b / 2) * 16 + (b % 2) * 8 + i] = q.s[r * NB + b];
    return o;
}

template <int R>
void vnni_kernel(const W& w, const XQ& xq, const XV& xv, float* out) {
    const __m512i mask = _mm512_set1_epi8(15);
    for (int n = 0; n < N; ++n) {
        __m512 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
        for (int b = 0; b < NB; b += 2) {
            const uint8_t* q = &w.qs[(size_t(n) * NB + b) * 16];
            __m256i raw = _mm256_loadu_si256((const __m256i*)q);
            // Bytes in element order: [block b lo nibbles | b hi | b+1 lo | b+1 hi].
            __m128i r0 = _mm256_castsi256_si128(raw), r1 = _mm256_extracti128_si256(raw, 1);
            __m512i packed = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_set_m128i(_mm_srli_epi16(r0, 4), r0)),
                _mm256_set_m128i(_mm_srli_epi16(r1, 4), r1), 1);
            packed = _mm512_and_si512(packed, mask);
            const __m512 dv = _mm512_insertf32x8(_mm512_set1_ps(w.d[n * NB + b]), _mm256_set1_ps(w.d[n * NB + b + 1]), 1);
            for (int r = 0; r < R; ++r) {
                __m512i x8 = _mm512_loadu_si512((const void*)&xq.q[r * K + b * 32]);
                __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), packed, x8);
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dv, _mm512_loadu_ps(&xv.sv[(size_t(r) * NB / 2 + b / 2) * 16])), acc[r]);
            }
        }
        // The min term: sum_b m_b * sum(x in block b), vectorized over blocks.
        for (int r = 0; r < R; ++r) {
            __m512 mm = _mm512_mul_ps(_mm512_loadu_ps(&w.m[n * NB]), _mm512_loadu_ps(&xq.sum[r * NB]));
            float tail = 0;
            for (int b = 16; b < NB; ++b) tail += w.m[n * NB + b] * xq.sum[r * NB + b];
            out[r * N + n] = _mm512_reduce_add_ps(acc[r]) + _mm512_reduce_add_ps(mm) + tail;
        }
    }
}

template <class F> double best_us(F f) {
    double best = 1e18;
    for (int rep = 0; rep < 30; ++rep) {
        auto t = std::chrono::steady_clock::now();
        for (int i = 0; i < 10; ++i) f();
        double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count() / 10;
        best = std::min(best, us);
    }
    return best;
}

int main() {
    srand(1);
    W w; w.qs.resize(size_t(N) * NB * 16); w.d.resize(N * NB); w.m.resize(N * NB);
    for (auto& v : w.qs) v = rand() & 255;
    for (int i = 0; i < N * NB; ++i) { w.d[i] = 0.01f * (1 + rand() % 100) / 100; w.m[i] = -0.08f * (rand() % 100) / 100; }
    std::vector<float> x(8 * K);
    for (auto& v : x) v = (rand() % 2001 - 1000) / 1000.f;
    std::vector<float> o1(8 * N), o2(8 * N);
    XQ xq = quantize(x.data(), 8);
    XV xv = xvecs(xq, 8);
    fp32_kernel<5>(w, x.data(), o1.data()); vnni_kernel<5>(w, xq, xv, o2.data());
    double err = 0, mag = 0;
    for (int i = 0; i < 5 * N; ++i) { err = std::max(err, (double)std::fabs(o1[i] - o2[i])); mag = std::max(mag, (double)std::fabs(o1[i])); }
    printf("max |fp32 - int8act| = %.4g (max |out| %.3g)\n", err, mag);
    double f1 = best_us([&] { fp32_kernel<1>(w, x.data(), o1.data()); });
    double f5 = best_us([&] { fp32_kernel<5>(w, x.data(), o1.data()); });
    double v1 = best_us([&] { XQ q = quantize(x.data(), 1); XV v = xvecs(q, 1); vnni_kernel<1>(w, q, v, o2.data()); });
    double v5 = best_us([&] { XQ q = quantize(x.data(), 5); XV v = xvecs(q, 5); vnni_kernel<5>(w, q, v, o2.data()); });
    printf("1536x576 Q4_1, 1 thread (us): fp32 R1 %.1f R5 %.1f (x%.2f) | int8-act VNNI R1 %.1f R5 %.1f (x%.2f) | VNNI speedup R1 %.2fx R5 %.2fx\n",
           f1, f5, f5 / f1, v1, v5, v5 / v1, f1 / v1, f5 / v5);
}
