// Runtime defaults of the DartLens executables, set before any library starts: OpenMP's wait
// policy and OpenBLAS's kernel choice. Both libraries read their environment once, in their own
// constructors, before main() runs.
//
// OpenMP. LibTorch's CPU kernels (and OpenBLAS) run on libgomp, whose worker threads spin for
// GOMP_SPINCOUNT = 300000 iterations between parallel regions before they sleep. With another
// process keeping a core busy, those spinning threads fight it: measured on the 2-core development
// machine (tools/contention.sh, llava-geom-small, 2 threads), one busy core made a prefill 1.8x the
// 1-thread time and a decoded token 9.6x slower (118 vs 12.3 ms). With GOMP_SPINCOUNT=1000 the
// prefill is 1.08x the 1-thread time and a token 23 ms, for 3.5% (prefill) and 11-13% (decode) on
// an idle machine. A desktop GUI shares its machine, so 1000 is the default.
//
// OpenBLAS (Debian's LibTorch does its float32 GEMMs there). Its DYNAMIC_ARCH build picks kernels
// by CPU model; on a virtual machine that reports a generic "Intel Xeon Processor" it falls back
// to its SSE3 "Prescott" kernels although the CPU has AVX-512: a llava-geom-small f32 prefill took
// 636 ms instead of 202 ms with the SkylakeX kernels (docs/benchmarks.md). So when the CPU has
// AVX-512 (F, BW, DQ, VL: OpenBLAS's SkylakeX kernels) or AVX2 + FMA (Haswell), the executable
// names that kernel family; OpenBLAS's own picks for such CPUs (SkylakeX, Cooperlake,
// SapphireRapids, Zen) use the same single-precision kernels. The PyTorch wheel's MKL ignores it.
//
// How: a pre-initialisation function of the executable (ELF .preinit_array: it runs once the
// libraries are loaded and relocated, before any of their constructors; a setenv there would be
// lost, since libc's initialisation resets environ afterwards) re-executes the program once with
// the settings added to its environment: same process id, name and arguments, no library
// constructor run twice; it costs 0.13-0.18 s of start-up measured here (mapping LibTorch again),
// so dartlens-cli does it only for the commands that run the model. What the user set
// (GOMP_SPINCOUNT or OMP_WAIT_POLICY, OPENBLAS_CORETYPE) is kept; DARTLENS_RUNTIME_DEFAULTS=0
// keeps the libraries' own defaults; if the re-execution fails, the program goes on with them.
// Include this header in exactly one source file of an executable, which also defines
// runtime_defaults_wanted.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace dl_app {

// Whether this invocation (argv as given to main) runs LibTorch kernels.
bool runtime_defaults_wanted(char** argv);

// The environment entry naming the OpenBLAS kernel family for this CPU's vector units, or nullptr.
inline char* openblas_coretype_for_this_cpu() {
#if defined(__x86_64__) || defined(__i386__)
    static char skylakex[] = "OPENBLAS_CORETYPE=SkylakeX", haswell[] = "OPENBLAS_CORETYPE=Haswell";
    __builtin_cpu_init();  // required before constructors have run
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return skylakex;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return haswell;
#endif
    return nullptr;
}

inline void runtime_defaults(int, char** argv, char** envp) {
    if (!argv || !envp || !runtime_defaults_wanted(argv)) return;
    bool spin = true, blas = true;
    size_t n = 0;
    for (; envp[n]; ++n) {
        const char* e = envp[n];
        if (std::strcmp(e, "DARTLENS_RUNTIME_DEFAULTS=0") == 0) return;
        if (std::strncmp(e, "GOMP_SPINCOUNT=", 15) == 0 || std::strncmp(e, "OMP_WAIT_POLICY=", 16) == 0) spin = false;
        if (std::strncmp(e, "OPENBLAS_CORETYPE=", 18) == 0) blas = false;
    }
    char* core = blas ? openblas_coretype_for_this_cpu() : nullptr;
    if (!spin && !core) return;
    char** env = static_cast<char**>(std::malloc((n + 3) * sizeof(char*)));
    if (!env) return;
    std::memcpy(env, envp, n * sizeof(char*));
    static char spin_setting[] = "GOMP_SPINCOUNT=1000";
    if (spin) env[n++] = spin_setting;
    if (core) env[n++] = core;
    env[n] = nullptr;
    // The binary's real path rather than /proc/self/exe, so that the process keeps its name (ps,
    // top, pkill see dartlens-cli, not "exe").
    static char self[4096];
    const ssize_t len = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len > 0) {
        self[len] = '\0';
        ::execve(self, argv, env);
    }
    std::free(env);  // not re-executed: the libraries' defaults
}

#if defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
__attribute__((section(".preinit_array"), used)) static void (*runtime_defaults_at_preinit)(int, char**, char**) =
    runtime_defaults;
#endif

}  // namespace dl_app
