// The portable kernels: no instruction-set attributes (SSE2 on x86-64, NEON on arm64).
#define QK_NS qk_generic
#define QK_VW 4
#define QK_RMAX 4
#define QK_NT1 2
#define QK_NT2 1
#include "qmatmul_impl.h"
