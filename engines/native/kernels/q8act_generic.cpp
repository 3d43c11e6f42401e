// Int8-activation kernels in portable C++ (q8act.h): the reference the vector
// builds are tested against, and the path for CPUs without AVX2.
#include <cmath>
#include <cstring>

#include "q8act.h"
#include "qmatmul.h"

namespace q8_generic {

namespace {

float half(const uint16_t* p) {
    _Float16 h;
    std::memcpy(&h, p, 2);
    return static_cast<float>(h);
}

}  // namespace

void quantize(int kind, const float* x, const Q8Acts& a) {
    for (size_t r = 0; r < a.rows; ++r) {
        float* f = a.f + r * a.fstride;
        float* dv = a.dv + r * a.dstride;
        q8_clear_row(a, r);
        for (size_t b = 0; b < a.nb; ++b) {
            const float* xb = x + r * a.K + b * 32;
            float amax = 0.0f, sum = 0.0f;
            for (int i = 0; i < 32; ++i) {
                amax = std::fmax(amax, std::fabs(xb[i]));
                sum += xb[i];
            }
            // A NaN or infinity makes the block's scale NaN, so it reaches the output as the fp32
            // path would carry it, instead of vanishing into clamped integers.
            const float d = q8_scale(amax, sum);
            const float inv = q8_inverse(d);
            int8_t* q = a.q + r * a.K + b * 32;
            for (int i = 0; i < 32; ++i)
                q[i] = static_cast<int8_t>(std::nearbyint(std::fmin(std::fmax(xb[i] * inv, -127.0f), 127.0f)));
            a.d[r * a.nb + b] = d;
            for (int i = 0; i < 8; ++i) dv[b / 2 * 16 + b % 2 * 8 + i] = d;
            if (kind == QK_Q4_1) f[b] = sum;  // Q8_0 needs no second term here
        }
    }
}

void matmul(int kind, const Q8Acts& a, const uint8_t* qs, const uint16_t* scales, size_t N, size_t n0, size_t n1,
            float* out) {
    const size_t nb = a.nb;
    const size_t qb = kind == QK_Q4_1 ? 16 : 32;
    const size_t sb = kind == QK_Q4_1 ? 2 : 1;
    // Each weight row's values as plain int8 once, for all activation rows: the block loops
    // below are then byte products the compiler vectorizes with whatever the target has.
    int8_t w[32 * QK_MAX_BLOCKS];
    for (size_t n = n0; n < n1; ++n) {
        const uint8_t* row = qs + n * nb * qb;
        const uint16_t* sc = scales + n * nb * sb;
        if (kind == QK_Q4_1) {
            for (size_t b = 0; b < nb; ++b)
                for (int j = 0; j < 16; ++j) {
                    w[b * 32 + j] = static_cast<int8_t>(row[b * 16 + j] & 15);
                    w[b * 32 + j + 16] = static_cast<int8_t>(row[b * 16 + j] >> 4);
                }
        } else {
            std::memcpy(w, row, nb * 32);
        }
        for (size_t r = 0; r < a.rows; ++r) {
            const int8_t* xq = a.q + r * a.K;
            float acc = 0.0f;
            for (size_t b = 0; b < nb; ++b) {
                int32_t dot = 0;
                for (int i = 0; i < 32; ++i) dot += w[b * 32 + i] * xq[b * 32 + i];
                acc += half(sc + b * sb) * a.d[r * nb + b] * static_cast<float>(dot);
            }
            if (kind == QK_Q4_1)
                for (size_t b = 0; b < nb; ++b) acc += half(sc + 2 * b + 1) * a.f[r * a.fstride + b];
            out[r * N + n] = acc;
        }
    }
}

}  // namespace q8_generic
