// engines.native._qkernels: quantized matmul kernels for the native engine.
//
// A CPython extension (no torch headers: it builds in seconds with any C++17
// compiler). The Python side (engines/native/quantized.py) checks shapes,
// dtypes and contiguity and passes raw data pointers; nothing here trusts a
// caller beyond that. Every call releases the GIL for its whole computation.
//
// Instruction set: chosen once at import from what the CPU reports (AVX-512,
// else AVX2, else the portable build), never from the machine that compiled
// it, so one build runs on every x86-64 CPU. `set_isa` overrides it (tests).
//
// Threads: a small pool of our own splits each call by rows of the weight.
// The caller's thread takes part, helpers spin briefly between calls (a decode
// step issues a few hundred of them back to back), then sleep on a condition
// variable so an idle engine costs no CPU.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "glue.h"
#include "q8act.h"
#include "qmatmul.h"

namespace {

using MatmulFn = void (*)(int, const float*, size_t, size_t, const uint8_t*, const uint16_t*, size_t, size_t,
                          size_t, float*);
using DequantFn = void (*)(int, const uint8_t*, const uint16_t*, size_t, size_t, size_t, float*);

using QuantizeQ8Fn = void (*)(int, const float*, const Q8Acts&);
using MatmulQ8Fn = void (*)(int, const Q8Acts&, const uint8_t*, const uint16_t*, size_t, size_t, size_t, float*);

struct Isa {
    const char* name;
    MatmulFn matmul;
    DequantFn dequantize;
};

// The int8-activation kernels (q8act.h) of one instruction set.
struct Q8Isa {
    const char* name;
    QuantizeQ8Fn quantize;
    MatmulQ8Fn matmul;
};

const Isa kGeneric = {"generic", qk_generic::matmul, qk_generic::dequantize};
const Q8Isa kQ8Generic = {"generic", q8_generic::quantize, q8_generic::matmul};
#if defined(__x86_64__)
const Isa kAvx2 = {"avx2", qk_avx2::matmul, qk_avx2::dequantize};
const Isa kAvx512 = {"avx512", qk_avx512::matmul, qk_avx512::dequantize};
const Q8Isa kQ8Avx2 = {"avx2", q8_avx2::quantize, q8_avx2::matmul};
const Q8Isa kQ8Avx512Vnni = {"avx512vnni", q8_avx512vnni::quantize, q8_avx512vnni::matmul};
#endif

bool isa_supported(const Isa& isa) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (&isa == &kAvx512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("avx2");
    if (&isa == &kAvx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return &isa == &kGeneric;
}

const Isa* best_isa() {
#if defined(__x86_64__)
    if (isa_supported(kAvx512)) return &kAvx512;
    if (isa_supported(kAvx2)) return &kAvx2;
#endif
    return &kGeneric;
}

// The int8 kernels that go with an instruction set: AVX-512 uses VNNI where the CPU has it
// and the AVX2 kernels where it does not (vpmaddubsw is AVX2's, and as fast per byte).
const Q8Isa* q8_for(const Isa* isa) {
#if defined(__x86_64__)
    if (isa == &kAvx512) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512vnni") ? &kQ8Avx512Vnni : &kQ8Avx2;
    }
    if (isa == &kAvx2) return &kQ8Avx2;
#endif
    (void)isa;
    return &kQ8Generic;
}

std::atomic<const Isa*> g_isa{nullptr};
std::atomic<const Q8Isa*> g_q8{nullptr};

// ---- the pool ----------------------------------------------------------------

class Pool {
   public:
    ~Pool() { resize(1); }

    int size() const { return size_; }

    // Waits for a run() in flight on another thread, then replaces the helpers.
    void resize(int n) {
        std::lock_guard<std::mutex> running(run_mu_);
        if (n < 1) n = 1;
        if (!helpers_.empty()) {
            {
                std::lock_guard<std::mutex> lock(mu_);
                stop_.store(true);
            }
            cv_.notify_all();
            for (auto& t : helpers_) t.join();
            helpers_.clear();
            stop_.store(false);
        }
        size_ = n;
        // Helpers start from the generation of now: a run published before a new helper
        // first looks is still new work to it, never missed.
        const uint64_t start = work_.load() >> 32;
        for (int i = 1; i < n; ++i) helpers_.emplace_back([this, start] { helper(start); });
    }

    // Runs job(chunk) for every chunk in [0, chunks) on the caller and the helpers; returns
    // when all are done. Chunks are claimed one at a time, so a helper the OS has not
    // scheduled (the machine is busy) leaves its share to whoever runs, instead of
    // holding the call up.
    void run(uint32_t chunks, const std::function<void(uint32_t)>& job) {
        // One run at a time uses the helpers; a second thread calling meanwhile (two engines
        // in one process, a test beside a server) computes its call alone rather than wait.
        std::unique_lock<std::mutex> running(run_mu_, std::try_to_lock);
        if (!running.owns_lock() || size_ == 1 || chunks <= 1) {
            for (uint32_t c = 0; c < chunks; ++c) job(c);
            return;
        }
        job_ = &job;
        const uint64_t gen = ++generation_;
        total_.store((gen << 32) | chunks, std::memory_order_relaxed);
        done_.store(gen << 32, std::memory_order_relaxed);
        work_.store(gen << 32, std::memory_order_seq_cst);  // publishes job_, total_ and done_
        if (sleepers_.load() > 0) {
            std::lock_guard<std::mutex> lock(mu_);
            cv_.notify_all();
        }
        work(gen);
        // Chunks a helper claimed are running now: they end within microseconds unless
        // the helper lost its core, so spin, yielding now and then.
        const uint64_t finished = (gen << 32) | chunks;
        for (unsigned spins = 1; done_.load(std::memory_order_acquire) != finished; ++spins) {
            relax();
            if ((spins & 255) == 0) std::this_thread::yield();
        }
    }

   private:
    static void relax() {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }

    // Claims and runs chunks of run `gen` until none is left. A claim is a compare-and-swap
    // on (generation, next chunk), so a late helper can never claim a chunk of a later run
    // while holding an earlier one's job; the job stays valid until every claimed chunk is done.
    //
    // The run's size is read once, tagged with its generation: a helper that comes back from
    // its last chunk of run `gen` while the caller is already publishing the next run must
    // not compare its stale claim word (gen, n) with the next run's larger size. It once
    // did: its claim then succeeded on the stale word, ran a chunk that was no run's (with
    // the next or even the previous, finished job) and counted it into the next run, whose
    // caller then waited forever for its exact total.
    void work(uint64_t gen) {
        const uint64_t sized = total_.load(std::memory_order_acquire);
        if ((sized >> 32) != (gen & 0xffffffffu)) return;  // that run is over
        const auto total = static_cast<uint32_t>(sized);
        uint64_t w = work_.load(std::memory_order_acquire);
        while ((w >> 32) == gen && static_cast<uint32_t>(w) < total) {
            if (work_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
                (*job_)(static_cast<uint32_t>(w));
                count_done(gen);
                w = work_.load(std::memory_order_acquire);
            }
        }
    }

    // Counts one finished chunk of run `gen`, and only of that run: a count tagged with the
    // run's generation cannot be disturbed by a late count meant for another run.
    void count_done(uint64_t gen) {
        uint64_t d = done_.load(std::memory_order_relaxed);
        while ((d >> 32) == (gen & 0xffffffffu) &&
               !done_.compare_exchange_weak(d, d + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) {
        }
    }

    void helper(uint64_t seen) {
        for (;;) {
            auto spin_start = std::chrono::steady_clock::now();
            unsigned spins = 0;
            uint64_t gen;
            while ((gen = work_.load(std::memory_order_acquire) >> 32) == seen) {
                if (stop_.load(std::memory_order_relaxed)) return;
                relax();
                if ((++spins & 255) == 0 && std::chrono::steady_clock::now() - spin_start > kSpin) {
                    std::unique_lock<std::mutex> lock(mu_);
                    sleepers_.fetch_add(1);
                    cv_.wait(lock, [&] { return (work_.load() >> 32) != seen || stop_.load(); });
                    sleepers_.fetch_sub(1);
                    spin_start = std::chrono::steady_clock::now();
                }
            }
            seen = gen;
            work(gen);
        }
    }

    // Long enough to bridge the Python between two matmuls of a step, short enough
    // that an idle engine stops burning a core almost at once.
    static constexpr std::chrono::microseconds kSpin{200};

    std::atomic<int> size_{1};
    std::vector<std::thread> helpers_;
    const std::function<void(uint32_t)>* job_ = nullptr;
    std::atomic<uint64_t> total_{0};  // (generation << 32) | chunks of that run
    uint64_t generation_ = 0;  // the caller's count of runs
    std::atomic<uint64_t> work_{0};  // (generation << 32) | next unclaimed chunk
    std::atomic<uint64_t> done_{0};  // (generation << 32) | chunks of that run finished
    std::atomic<int> sleepers_{0};
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::condition_variable cv_;
    std::mutex run_mu_;  // held by the thread whose run() uses the helpers
};

Pool* g_pool = nullptr;

// Rows [0, n) in chunks of whole `align`-row units, a few chunks per thread so
// that threads that start late still share the work.
struct Chunks {
    size_t n, rows;
    uint32_t count;
    Chunks(size_t n_, int threads, size_t align) : n(n_) {
        const size_t units = (n + align - 1) / align;
        const size_t wanted = static_cast<size_t>(threads) * 4;
        const size_t per = (units + wanted - 1) / wanted;
        rows = (per > 0 ? per : 1) * align;
        count = static_cast<uint32_t>((n + rows - 1) / rows);
    }
    size_t lo(uint32_t c) const { return c * rows; }
    size_t hi(uint32_t c) const { return (c + 1) * rows < n ? (c + 1) * rows : n; }
};

// ---- argument parsing ------------------------------------------------------------

bool parse(PyObject* const* args, Py_ssize_t nargs, Py_ssize_t expected, const char* name, size_t* out) {
    if (nargs != expected) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments (%zd given)", name, expected, nargs);
        return false;
    }
    for (Py_ssize_t i = 0; i < nargs; ++i) {
        out[i] = PyLong_AsSize_t(args[i]);
        if (out[i] == static_cast<size_t>(-1) && PyErr_Occurred()) return false;
    }
    return true;
}

bool check_kind(size_t kind) {
    if (kind != QK_Q4_1 && kind != QK_Q8_0) {
        PyErr_SetString(PyExc_ValueError, "unknown quantization kind");
        return false;
    }
    return true;
}

bool check_k(size_t K) {
    if (K == 0 || K % 32 != 0 || K / 32 > QK_MAX_BLOCKS) {
        PyErr_Format(PyExc_ValueError, "K must be a positive multiple of 32, at most %d", 32 * QK_MAX_BLOCKS);
        return false;
    }
    return true;
}

size_t blocks_bytes(int kind) { return kind == QK_Q4_1 ? 16 : 32; }
size_t scales_per_block(int kind) { return kind == QK_Q4_1 ? 2 : 1; }

// The arguments of matmul and matmul_q8: (kind, x_ptr, rows, K, qs_ptr, scales_ptr, N, out_ptr).
struct MatmulArgs {
    int kind;
    const float* x;
    size_t rows, K, N;
    const uint8_t* qs;
    const uint16_t* scales;
    float* out;
};

bool parse_matmul(PyObject* const* args, Py_ssize_t nargs, const char* name, MatmulArgs* m) {
    size_t a[8];
    if (!parse(args, nargs, 8, name, a) || !check_kind(a[0]) || !check_k(a[3])) return false;
    m->kind = static_cast<int>(a[0]);
    m->x = reinterpret_cast<const float*>(a[1]);
    m->rows = a[2];
    m->K = a[3];
    m->qs = reinterpret_cast<const uint8_t*>(a[4]);
    m->scales = reinterpret_cast<const uint16_t*>(a[5]);
    m->N = a[6];
    m->out = reinterpret_cast<float*>(a[7]);
    return true;
}

// matmul(kind, x_ptr, rows, K, qs_ptr, scales_ptr, N, out_ptr): out[rows, N] = x[rows, K] @ W[N, K]^T.
PyObject* py_matmul(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    MatmulArgs m;
    if (!parse_matmul(args, nargs, "matmul", &m)) return nullptr;
    const Isa* isa = g_isa.load();
    Py_BEGIN_ALLOW_THREADS;
    const Chunks chunks(m.N, g_pool->size(), 16);
    g_pool->run(chunks.count, [&](uint32_t c) {
        isa->matmul(m.kind, m.x, m.rows, m.K, m.qs, m.scales, m.N, chunks.lo(c), chunks.hi(c), m.out);
    });
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

// Each calling thread's buffers for its quantized activations, grown to its largest call.
struct Q8Buffers {
    std::vector<int8_t> q;
    std::vector<float> d, dv, f;
};

// matmul_q8(kind, x_ptr, rows, K, qs_ptr, scales_ptr, N, out_ptr): as matmul, with the
// activations quantized to int8 per row and block first (q8act.h), once, on the calling thread.
PyObject* py_matmul_q8(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    MatmulArgs m;
    if (!parse_matmul(args, nargs, "matmul_q8", &m)) return nullptr;
    const Q8Isa* q8 = g_q8.load();
    thread_local Q8Buffers buffers;
    Py_BEGIN_ALLOW_THREADS;
    Q8Acts acts;
    acts.rows = m.rows;
    acts.K = m.K;
    acts.nb = m.K / 32;
    acts.fstride = q8_fstride(m.K);
    acts.dstride = q8_dstride(m.K);
    buffers.q.resize(std::max(buffers.q.size(), m.rows * m.K));
    buffers.d.resize(std::max(buffers.d.size(), m.rows * acts.nb));
    buffers.dv.resize(std::max(buffers.dv.size(), m.rows * acts.dstride));
    buffers.f.resize(std::max(buffers.f.size(), m.rows * acts.fstride));
    acts.q = buffers.q.data();
    acts.d = buffers.d.data();
    acts.dv = buffers.dv.data();
    acts.f = buffers.f.data();
    q8->quantize(m.kind, m.x, acts);
    const Chunks chunks(m.N, g_pool->size(), 16);
    g_pool->run(chunks.count, [&](uint32_t c) {
        q8->matmul(m.kind, acts, m.qs, m.scales, m.N, chunks.lo(c), chunks.hi(c), m.out);
    });
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

// dequantize(kind, qs_ptr, scales_ptr, N, K, out_ptr): out[N, K] fp32.
PyObject* py_dequantize(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    size_t a[6];
    if (!parse(args, nargs, 6, "dequantize", a) || !check_kind(a[0]) || !check_k(a[4])) return nullptr;
    const int kind = static_cast<int>(a[0]);
    const auto* qs = reinterpret_cast<const uint8_t*>(a[1]);
    const auto* scales = reinterpret_cast<const uint16_t*>(a[2]);
    const size_t N = a[3], K = a[4];
    auto* out = reinterpret_cast<float*>(a[5]);
    const Isa* isa = g_isa.load();
    Py_BEGIN_ALLOW_THREADS;
    const Chunks chunks(N, g_pool->size(), 1);
    g_pool->run(chunks.count, [&](uint32_t c) {
        isa->dequantize(kind, qs, scales, K, chunks.lo(c), chunks.hi(c), out + chunks.lo(c) * K);
    });
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

// gather(kind, qs_ptr, scales_ptr, K, ids_ptr (int64), count, out_ptr): out[i] = W[ids[i]] in fp32.
// The caller has checked every id against the row count.
PyObject* py_gather(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    size_t a[7];
    if (!parse(args, nargs, 7, "gather", a) || !check_kind(a[0]) || !check_k(a[3])) return nullptr;
    const int kind = static_cast<int>(a[0]);
    const auto* qs = reinterpret_cast<const uint8_t*>(a[1]);
    const auto* scales = reinterpret_cast<const uint16_t*>(a[2]);
    const size_t K = a[3], count = a[5];
    const auto* ids = reinterpret_cast<const int64_t*>(a[4]);
    auto* out = reinterpret_cast<float*>(a[6]);
    const Isa* isa = g_isa.load();
    const size_t nb = K / 32;
    Py_BEGIN_ALLOW_THREADS;
    for (size_t i = 0; i < count; ++i) {
        const size_t row = static_cast<size_t>(ids[i]);
        isa->dequantize(kind, qs + row * nb * blocks_bytes(kind), scales + row * nb * scales_per_block(kind), K,
                        0, 1, out + i * K);
    }
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

// rmsnorm(x_ptr, weight_ptr, out_ptr, rows, dim, eps)
PyObject* py_rmsnorm(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    size_t a[5];
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "rmsnorm takes 6 arguments");
        return nullptr;
    }
    if (!parse(args, 5, 5, "rmsnorm", a)) return nullptr;
    const double eps = PyFloat_AsDouble(args[5]);
    if (eps == -1.0 && PyErr_Occurred()) return nullptr;
    qk_glue::rmsnorm(reinterpret_cast<const float*>(a[0]), reinterpret_cast<const float*>(a[1]),
                     reinterpret_cast<float*>(a[2]), a[3], a[4], static_cast<float>(eps));
    Py_RETURN_NONE;
}

// silu_mul(gate_up_ptr, out_ptr, rows, width)
PyObject* py_silu_mul(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    size_t a[4];
    if (!parse(args, nargs, 4, "silu_mul", a)) return nullptr;
    qk_glue::silu_mul(reinterpret_cast<const float*>(a[0]), reinterpret_cast<float*>(a[1]), a[2], a[3]);
    Py_RETURN_NONE;
}

// rope(x_ptr, batch, heads, tokens, head_dim, positions_ptr, cos_ptr, sin_ptr)
PyObject* py_rope(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    size_t a[8];
    if (!parse(args, nargs, 8, "rope", a)) return nullptr;
    qk_glue::rope(reinterpret_cast<float*>(a[0]), a[1], a[2], a[3], a[4], reinterpret_cast<const int64_t*>(a[5]),
                  reinterpret_cast<const float*>(a[6]), reinterpret_cast<const float*>(a[7]));
    Py_RETURN_NONE;
}

// attention(q_ptr, q_batch_stride, k_ptr, v_ptr, slot_stride, head_stride, slots_ptr, starts_ptr,
//           batch, tokens, heads, kv_heads, head_dim, out_ptr)
PyObject* py_attention(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    size_t a[14];
    if (!parse(args, nargs, 14, "attention", a)) return nullptr;
    qk_glue::AttentionArgs at;
    at.q = reinterpret_cast<const float*>(a[0]);
    at.q_batch_stride = a[1];
    at.k = reinterpret_cast<const float*>(a[2]);
    at.v = reinterpret_cast<const float*>(a[3]);
    at.slot_stride = a[4];
    at.head_stride = a[5];
    at.slots = reinterpret_cast<const int64_t*>(a[6]);
    at.starts = reinterpret_cast<const int64_t*>(a[7]);
    at.batch = a[8];
    at.tokens = a[9];
    at.heads = a[10];
    at.kv_heads = a[11];
    at.head_dim = a[12];
    at.out = reinterpret_cast<float*>(a[13]);
    if (at.kv_heads == 0 || at.heads % at.kv_heads != 0) {
        PyErr_SetString(PyExc_ValueError, "heads must be a multiple of kv_heads");
        return nullptr;
    }
    Py_BEGIN_ALLOW_THREADS;
    const size_t items = at.batch * at.tokens * at.heads;
    const Chunks chunks(items, g_pool->size(), 1);
    g_pool->run(chunks.count, [&](uint32_t c) { qk_glue::attention(at, chunks.lo(c), chunks.hi(c)); });
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

PyObject* py_set_threads(PyObject*, PyObject* arg) {
    const long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return nullptr;
    if (n < 1 || n > 256) {
        PyErr_SetString(PyExc_ValueError, "threads must be in [1, 256]");
        return nullptr;
    }
    g_pool->resize(static_cast<int>(n));
    Py_RETURN_NONE;
}

PyObject* py_threads(PyObject*, PyObject*) { return PyLong_FromLong(g_pool->size()); }

PyObject* py_isa(PyObject*, PyObject*) { return PyUnicode_FromString(g_isa.load()->name); }

PyObject* py_q8_isa(PyObject*, PyObject*) { return PyUnicode_FromString(g_q8.load()->name); }

PyObject* py_set_isa(PyObject*, PyObject* arg) {
    const char* name = PyUnicode_AsUTF8(arg);
    if (name == nullptr) return nullptr;
    const Isa* chosen = nullptr;
    if (std::strcmp(name, "best") == 0) chosen = best_isa();
    if (std::strcmp(name, "generic") == 0) chosen = &kGeneric;
#if defined(__x86_64__)
    if (std::strcmp(name, "avx2") == 0) chosen = &kAvx2;
    if (std::strcmp(name, "avx512") == 0) chosen = &kAvx512;
#endif
    if (chosen == nullptr) {
        PyErr_Format(PyExc_ValueError, "unknown instruction set %R", arg);
        return nullptr;
    }
    if (!isa_supported(*chosen)) {
        PyErr_Format(PyExc_ValueError, "this CPU does not support %s", chosen->name);
        return nullptr;
    }
    g_isa.store(chosen);
    g_q8.store(q8_for(chosen));
    Py_RETURN_NONE;
}

PyMethodDef kMethods[] = {
    {"matmul", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_matmul)), METH_FASTCALL,
     "matmul(kind, x_ptr, rows, K, qs_ptr, scales_ptr, N, out_ptr)"},
    {"matmul_q8", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_matmul_q8)), METH_FASTCALL,
     "matmul_q8(kind, x_ptr, rows, K, qs_ptr, scales_ptr, N, out_ptr): matmul with int8 activations"},
    {"dequantize", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_dequantize)), METH_FASTCALL,
     "dequantize(kind, qs_ptr, scales_ptr, N, K, out_ptr)"},
    {"gather", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_gather)), METH_FASTCALL,
     "gather(kind, qs_ptr, scales_ptr, K, ids_ptr, count, out_ptr)"},
    {"rmsnorm", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_rmsnorm)), METH_FASTCALL,
     "rmsnorm(x_ptr, weight_ptr, out_ptr, rows, dim, eps)"},
    {"silu_mul", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_silu_mul)), METH_FASTCALL,
     "silu_mul(gate_up_ptr, out_ptr, rows, width)"},
    {"rope", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_rope)), METH_FASTCALL,
     "rope(x_ptr, batch, heads, tokens, head_dim, positions_ptr, cos_ptr, sin_ptr)"},
    {"attention", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_attention)), METH_FASTCALL,
     "attention(q, q_batch_stride, k, v, slot_stride, head_stride, slots, starts, B, T, H, KVH, D, out)"},
    {"set_threads", py_set_threads, METH_O, "set_threads(n): threads per call, the caller's included"},
    {"threads", py_threads, METH_NOARGS, "threads per call"},
    {"isa", py_isa, METH_NOARGS, "the instruction set in use: avx512, avx2 or generic"},
    {"q8_isa", py_q8_isa, METH_NOARGS, "the int8-activation kernels in use: avx512vnni, avx2 or generic"},
    {"set_isa", py_set_isa, METH_O, "set_isa(name): avx512, avx2, generic or best"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_qkernels", "Quantized matmul kernels (GGUF Q4_1, Q8_0).", -1,
                       kMethods};

}  // namespace

PyMODINIT_FUNC PyInit__qkernels(void) {
    g_isa.store(best_isa());
    g_q8.store(q8_for(g_isa.load()));
    if (g_pool == nullptr) g_pool = new Pool();  // Never freed: helpers must outlive interpreter teardown.
    PyObject* m = PyModule_Create(&kModule);
    if (m == nullptr) return nullptr;
    if (PyModule_AddIntConstant(m, "Q4_1", QK_Q4_1) < 0 || PyModule_AddIntConstant(m, "Q8_0", QK_Q8_0) < 0) {
        Py_DECREF(m);
        return nullptr;
    }
    return m;
}
