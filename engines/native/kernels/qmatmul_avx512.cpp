// AVX-512 (F, BW, VL) + FMA + F16C kernels (16 floats per register, 32 registers).
#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
#define QK_NS qk_avx512
#define QK_VW 16
#define QK_RMAX 12
#define QK_NT1 4
#define QK_NT2 2
#include "qmatmul_impl.h"
#endif
