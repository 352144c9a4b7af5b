#define _GNU_SOURCE
#include "blas_threads.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int blas_threads_set_spin_exponent(int exponent) {
    if (getenv("OPENBLAS_THREAD_TIMEOUT") != NULL) return 0;
    void (*read_environment)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "openblas_read_env");
    int (*stop_threads)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "blas_thread_shutdown_");
    if (read_environment == NULL || stop_threads == NULL) return 0;
    char value[12];
    snprintf(value, sizeof value, "%d", exponent);
    if (setenv("OPENBLAS_THREAD_TIMEOUT", value, 0) != 0) return 0;
    read_environment();
    stop_threads();
    return 1;
}
