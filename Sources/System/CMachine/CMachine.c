#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include "CMachine.h"

const char *vavl_best_openblas_core(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return 0;
}

void vavl_require_avx2_fma(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return;
    fputs("vavl: this build's numeric code uses AVX2 and FMA (VAVL_TARGET_CPU=haswell, the default), "
          "which this CPU lacks; rebuild with `VAVL_TARGET_CPU=x86-64 swift build -c release` "
          "after `swift package clean`\n", stderr);
    exit(78);
#endif
}

const char *vavl_sgemm_library(void) {
    void *symbol = dlsym(RTLD_DEFAULT, "cblas_sgemm");
    Dl_info info;
    if (symbol == 0 || dladdr(symbol, &info) == 0 || info.dli_fname == 0) return "unknown";
    return info.dli_fname;
}


// MARK: - Memory

int vavl_keep_freed_heap_memory(void) {
    // The user's own settings win (glibc reads these at the first allocation).
    if (getenv("MALLOC_TRIM_THRESHOLD_") || getenv("MALLOC_MMAP_THRESHOLD_") || getenv("GLIBC_TUNABLES")) return 0;
    // The largest threshold glibc accepts on 64-bit systems: blocks up to 32 MiB come from the heap.
    if (!mallopt(M_MMAP_THRESHOLD, 32 << 20)) return 0;
    if (!mallopt(M_TRIM_THRESHOLD, 1 << 30)) return 0;
    return 1;
}

// MARK: - Stop signals

static volatile sig_atomic_t stop_signal = 0;
static int stop_handlers_installed = 0;

static void record_stop(int signal) {
    if (stop_signal == 0) stop_signal = signal;
}

static void stop_signal_set(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

static void install_stop_handlers(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = record_stop;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART | SA_RESETHAND;
    sigaction(SIGUSR1, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    stop_handlers_installed = 1;
}

void vavl_install_stop_signals(void) {
    install_stop_handlers();
    vavl_release_stop_signals();
}

void vavl_release_stop_signals(void) {
    sigset_t set;
    stop_signal_set(&set);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int vavl_execute_self_keeping_stop_signals(char *const *arguments) {
    sigset_t set;
    stop_signal_set(&set);
    sigprocmask(SIG_BLOCK, &set, NULL);
    // A request already recorded is raised again while blocked: it stays pending through the
    // exec and reaches the new image's handler when that unblocks.
    if (stop_signal != 0) raise(stop_signal);
    execv("/proc/self/exe", arguments);
    // The exec failed: the raised request reaches our handler again (it keeps the first).
    if (stop_handlers_installed) install_stop_handlers();
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    return -1;
}

int vavl_stop_signal(void) { return stop_signal; }

void vavl_request_stop(int signal) { record_stop(signal); }
