#include "cpu_features.h"

#include <stdlib.h>
#include <string.h>

static int parse_cap(void) {
    const char *value = getenv("LORA_KERNELS");
    if (value == NULL || value[0] == 0) return -1;
    if (strcmp(value, "portable") == 0) return CPU_PORTABLE;
    if (strcmp(value, "avx2") == 0) return CPU_AVX2;
    if (strcmp(value, "avx512") == 0) return CPU_AVX512;
    return -2;
}

static int detected_level = -1, detected_vnni = 0;

static void detect(void) {
    if (detected_level >= 0) return;
    int level = CPU_PORTABLE, vnni = 0;
#if LORA_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        level = CPU_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
            level = CPU_AVX512;
            vnni = __builtin_cpu_supports("avx512vnni");
        }
    }
#endif
    detected_vnni = vnni;
    // Written last: a racing first call at worst detects twice, with the same result.
    __atomic_store_n(&detected_level, level, __ATOMIC_RELEASE);
}

int cpu_detected_level(void) {
    detect();
    return __atomic_load_n(&detected_level, __ATOMIC_ACQUIRE);
}

int cpu_detected_vnni(void) {
    return cpu_detected_level() == CPU_AVX512 && detected_vnni;
}

int cpu_kernel_cap(void) {
    static int cap = -3;
    int value = __atomic_load_n(&cap, __ATOMIC_ACQUIRE);
    if (value == -3) {
        value = parse_cap();
        __atomic_store_n(&cap, value, __ATOMIC_RELEASE);
    }
    return value;
}

// Called per row by the vector kernels: the level is worked out once and kept.
int cpu_kernel_level(void) {
    static int level = -1;
    int value = __atomic_load_n(&level, __ATOMIC_ACQUIRE);
    if (value < 0) {
        const int detected = cpu_detected_level(), cap = cpu_kernel_cap();
        value = cap >= 0 && cap < detected ? cap : detected;
        __atomic_store_n(&level, value, __ATOMIC_RELEASE);
    }
    return value;
}

int cpu_kernel_vnni(void) {
    return cpu_kernel_level() == CPU_AVX512 && cpu_detected_vnni();
}
