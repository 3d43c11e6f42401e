"""Builds the native engine's quantized matmul kernels (a plain C++17 CPython extension).

Project metadata lives in pyproject.toml; this file only adds the extension.
Each instruction set's kernels carry their own target attributes and the
module picks one at import from the CPU's flags, so the build needs no
-march and one build runs on any x86-64 CPU.
"""

from setuptools import Extension, setup

KERNELS = "engines/native/kernels/"

setup(
    ext_modules=[
        Extension(
            "engines.native._qkernels",
            sources=[
                KERNELS + name
                for name in (
                    "module.cpp",
                    "glue.cpp",
                    "qmatmul_generic.cpp",
                    "qmatmul_avx2.cpp",
                    "qmatmul_avx512.cpp",
                    "q8act_generic.cpp",
                    "q8act_avx2.cpp",
                    "q8act_avx512.cpp",
                )
            ],
            depends=[
                KERNELS + name
                for name in ("qmatmul.h", "qmatmul_impl.h", "glue.h", "q8act.h", "q8act_rows.h")
            ],
            language="c++",
            extra_compile_args=["-std=c++17", "-O3", "-fno-math-errno", "-fopenmp-simd", "-Wall"],
        )
    ]
)
