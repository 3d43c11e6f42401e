// The part of the int8-activation kernels every vector build shares: split a call's rows into
// calls the registers hold and dispatch each on its row count.
//
// Included inside an instruction set's namespace (q8act_avx2.cpp, q8act_avx512.cpp) after it
// has defined kRowsMax (rows per call at most), tile_rows(R) (weight rows a tile computes at R
// activation rows) and tile<KIND, R, NT>, which computes out[r, n .. n + NT) for r < R.

template <int KIND, int R>
void rows_tiled(const Q8Acts& a, const uint8_t* qs, const uint16_t* scales, size_t n0, size_t n1, float* out,
                size_t ldo) {
    constexpr int NT = tile_rows(R);
    size_t n = n0;
    for (; n + NT <= n1; n += NT) tile<KIND, R, NT>(a, qs, scales, n, out, ldo);
    for (; n < n1; ++n) tile<KIND, R, 1>(a, qs, scales, n, out, ldo);
}

// R is a template argument so the accumulators live in registers: find the one that is a.rows.
template <int KIND, int R = 1>
void rows_any(const Q8Acts& a, const uint8_t* qs, const uint16_t* scales, size_t n0, size_t n1, float* out,
              size_t ldo) {
    if constexpr (R <= static_cast<int>(kRowsMax)) {
        if (a.rows == static_cast<size_t>(R)) return rows_tiled<KIND, R>(a, qs, scales, n0, n1, out, ldo);
        rows_any<KIND, R + 1>(a, qs, scales, n0, n1, out, ldo);
    }
}

}  // namespace

void matmul(int kind, const Q8Acts& a, const uint8_t* qs, const uint16_t* scales, size_t N, size_t n0, size_t n1,
            float* out) {
    // More rows than the registers hold: in parts, each reading this thread's weight rows again
    // (from cache when the slice is small). A row's sums are the same in any part.
    for (size_t r0 = 0; r0 < a.rows; r0 += kRowsMax) {
        const Q8Acts part = q8_rows(a, r0, a.rows - r0 < kRowsMax ? a.rows - r0 : kRowsMax);
        if (kind == QK_Q4_1) {
            rows_any<QK_Q4_1>(part, qs, scales, n0, n1, out + r0 * N, N);
        } else {
            rows_any<QK_Q8_0>(part, qs, scales, n0, n1, out + r0 * N, N);
        }
    }
}

namespace {
