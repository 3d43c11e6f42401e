// The small per-layer operations of a decode step, fused: at one or a few rows
// torch spends more time dispatching them than computing them (an RMSNorm took
// ~16 us and an attention over 300 positions ~40 us, most of it overhead).
// Plain loops the compiler vectorizes for the baseline instruction set (the sums
// through `omp simd` reductions, built with -fopenmp-simd: no OpenMP runtime); the
// arithmetic is fp32 throughout, as in the torch ops they replace.

#include "glue.h"

#include <cmath>
#include <vector>

namespace qk_glue {

void rmsnorm(const float* x, const float* weight, float* out, size_t rows, size_t dim, float eps) {
    for (size_t r = 0; r < rows; ++r) {
        const float* xr = x + r * dim;
        float* o = out + r * dim;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (size_t i = 0; i < dim; ++i) sum += xr[i] * xr[i];
        const float scale = 1.0f / std::sqrt(sum / static_cast<float>(dim) + eps);
        for (size_t i = 0; i < dim; ++i) o[i] = xr[i] * scale * weight[i];
    }
}

void silu_mul(const float* gate_up, float* out, size_t rows, size_t width) {
    for (size_t r = 0; r < rows; ++r) {
        const float* g = gate_up + r * 2 * width;
        const float* u = g + width;
        float* o = out + r * width;
        for (size_t i = 0; i < width; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    }
}

void rope(float* x, size_t batch, size_t heads, size_t tokens, size_t head_dim, const int64_t* positions,
          const float* cos, const float* sin) {
    const size_t half = head_dim / 2;
    for (size_t b = 0; b < batch; ++b)
        for (size_t h = 0; h < heads; ++h)
            for (size_t t = 0; t < tokens; ++t) {
                float* v = x + ((b * heads + h) * tokens + t) * head_dim;
                const size_t p = static_cast<size_t>(positions[b * tokens + t]);
                const float* c = cos + p * head_dim;
                const float* s = sin + p * head_dim;
                for (size_t i = 0; i < half; ++i) {
                    const float lo = v[i], hi = v[i + half];
                    v[i] = lo * c[i] - hi * s[i];
                    v[i + half] = hi * c[i + half] + lo * s[i + half];
                }
            }
}

void attention(const AttentionArgs& a, size_t item_lo, size_t item_hi) {
    thread_local std::vector<float> scores;
    const size_t group = a.heads / a.kv_heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(a.head_dim));
    for (size_t item = item_lo; item < item_hi; ++item) {
        // item = ((b * T) + t) * H + h
        const size_t h = item % a.heads;
        const size_t t = (item / a.heads) % a.tokens;
        const size_t b = item / a.heads / a.tokens;
        const size_t length = static_cast<size_t>(a.starts[b]) + t + 1;  // causal: positions <= own
        const float* q = a.q + b * a.q_batch_stride + (h * a.tokens + t) * a.head_dim;
        const size_t base = static_cast<size_t>(a.slots[b]) * a.slot_stride + (h / group) * a.head_stride;
        const float* k = a.k + base;
        const float* v = a.v + base;
        if (scores.size() < length) scores.resize(length);
        float best = -INFINITY;
        for (size_t j = 0; j < length; ++j) {
            const float* kj = k + j * a.head_dim;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (size_t d = 0; d < a.head_dim; ++d) s += q[d] * kj[d];
            s *= scale;
            scores[j] = s;
            best = s > best ? s : best;
        }
        float total = 0.0f;
        for (size_t j = 0; j < length; ++j) {
            scores[j] = std::exp(scores[j] - best);
            total += scores[j];
        }
        float* o = a.out + ((b * a.tokens + t) * a.heads + h) * a.head_dim;
        for (size_t d = 0; d < a.head_dim; ++d) o[d] = 0.0f;
        for (size_t j = 0; j < length; ++j) {
            const float p = scores[j] / total;
            const float* vj = v + j * a.head_dim;
            for (size_t d = 0; d < a.head_dim; ++d) o[d] += p * vj[d];
        }
    }
}

}  // namespace qk_glue
