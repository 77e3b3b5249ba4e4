// OpenMP's wait policy for the DartLens executables, set before any library starts.
//
// LibTorch's CPU kernels (and OpenBLAS) run on libgomp, whose worker threads spin for
// GOMP_SPINCOUNT = 300000 iterations (well over a millisecond) between parallel regions before
// they sleep. On a machine where another process keeps a core busy, those spinning threads fight
// it and each other: measured on the 2-core development machine (tools/contention.sh,
// llava-geom-small, 2 threads), one busy core made a prefill 1.63x the 1-thread time and a
// decoded token 8.5x slower (108 vs 12.8 ms). With GOMP_SPINCOUNT=1000 the same prefill is 1.11x
// the 1-thread time and a token takes 27 ms, at a cost of 4% (prefill) and 11% (decode) on an
// idle machine. The GUI shares the machine with everything else on a desktop, so 1000 is the
// default of every DartLens executable.
//
// libgomp reads its environment once, in its own constructor, before main() runs, and a setenv
// before that is lost (libc's own initialisation resets environ afterwards). So a
// pre-initialisation function of the executable (ELF .preinit_array: it runs once the libraries
// are loaded and relocated, before any of their constructors) re-executes the program once with
// GOMP_SPINCOUNT=1000 added to its environment: same process id, same arguments, about 20 ms of
// dynamic loading (LD_DEBUG=statistics) and no library constructor run twice. A user's own
// GOMP_SPINCOUNT or OMP_WAIT_POLICY is left as it is; DARTLENS_OPENMP_DEFAULTS=0 keeps libgomp's
// defaults; if the re-execution fails (no /proc), the program goes on with libgomp's defaults.
// Include this header in exactly one source file of an executable, which also defines
// openmp_defaults_wanted (dartlens-cli: only for the commands that compute, since a re-execution
// costs 0.13-0.18 s of start-up measured here, mostly mapping LibTorch again).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace dl_app {

// Whether this invocation (argv as given to main) is one that runs LibTorch kernels.
bool openmp_defaults_wanted(char** argv);

inline void openmp_defaults(int, char** argv, char** envp) {
    if (!argv || !envp || !openmp_defaults_wanted(argv)) return;
    size_t n = 0;
    for (; envp[n]; ++n) {
        const char* e = envp[n];
        if (std::strncmp(e, "GOMP_SPINCOUNT=", 15) == 0 || std::strncmp(e, "OMP_WAIT_POLICY=", 16) == 0 ||
            std::strcmp(e, "DARTLENS_OPENMP_DEFAULTS=0") == 0)
            return;
    }
    char** env = static_cast<char**>(std::malloc((n + 2) * sizeof(char*)));
    if (!env) return;
    std::memcpy(env, envp, n * sizeof(char*));
    static char setting[] = "GOMP_SPINCOUNT=1000";
    env[n] = setting;
    env[n + 1] = nullptr;
    // The binary's real path rather than /proc/self/exe, so that the process keeps its name (ps,
    // top, pkill see dartlens-cli, not "exe").
    static char self[4096];
    const ssize_t len = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len > 0) {
        self[len] = '\0';
        ::execve(self, argv, env);
    }
    std::free(env);  // not re-executed: libgomp's defaults
}

#if defined(__linux__)
__attribute__((section(".preinit_array"), used)) static void (*openmp_defaults_at_preinit)(int, char**, char**) =
    openmp_defaults;
#endif

}  // namespace dl_app
