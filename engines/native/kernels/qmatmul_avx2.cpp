// AVX2 + FMA + F16C kernels (8 floats per register, 16 registers).
#if defined(__x86_64__)
#pragma GCC target("avx2,fma,f16c")
#define QK_NS qk_avx2
#define QK_VW 8
#define QK_RMAX 5
#define QK_NT1 2
#define QK_NT2 1
#include "qmatmul_impl.h"
#endif
