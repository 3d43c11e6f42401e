// Fused small operations of a decode step (glue.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace qk_glue {

// out[r] = x[r] / rms(x[r]) * weight, rows of `dim`.
void rmsnorm(const float* x, const float* weight, float* out, size_t rows, size_t dim, float eps);

// out[r] = silu(gate) * up where gate_up[r] = [gate (width) | up (width)].
void silu_mul(const float* gate_up, float* out, size_t rows, size_t width);

// Rotate-half RoPE in place on x [B, heads, T, D] (contiguous), token (b, t) at
// positions[b * T + t], angles from tables cos/sin [positions, D].
void rope(float* x, size_t batch, size_t heads, size_t tokens, size_t head_dim, const int64_t* positions,
          const float* cos, const float* sin);

// Causal grouped-query attention of query rows against each row's own slot of a KV cache layer.
struct AttentionArgs {
    const float* q;         // [B, H, T, D] per batch row, rows q_batch_stride apart
    size_t q_batch_stride;  // floats between batch rows of q
    const float* k;         // the layer's keys: slot s, kv head g, position j at
    const float* v;         //   s * slot_stride + g * head_stride + j * D
    size_t slot_stride, head_stride;
    const int64_t* slots;   // [B]
    const int64_t* starts;  // [B]: position of each row's first token
    size_t batch, tokens, heads, kv_heads, head_dim;
    float* out;             // [B, T, H, D]
};

// Items [item_lo, item_hi) of the B * T * H (row, token, head) triples.
void attention(const AttentionArgs& args, size_t item_lo, size_t item_hi);

}  // namespace qk_glue
