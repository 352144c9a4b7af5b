#ifndef CPU_FEATURES_H
#define CPU_FEATURES_H

// The one place the kernels learn which instructions they may use.
//
// Levels, each including the one below:
//   CPU_PORTABLE  plain C, any CPU (aarch64, or x86-64 without AVX2)
//   CPU_AVX2      AVX2 + FMA + F16C (Haswell, Zen 1-3)
//   CPU_AVX512    AVX-512 F/BW/VL on top of that (Skylake-X, Ice Lake, Zen 4)
// VNNI (AVX-512 VNNI, for the argmax screen's int8 products) is a separate flag within AVX512.
//
// The level in use is what this CPU has, capped by the environment variable LORA_KERNELS
// (portable | avx2 | avx512), read once at the first call: CI runs the whole suite again under
// each cap, so a path that only an older CPU would take is tested on every machine.
enum { CPU_PORTABLE = 0, CPU_AVX2 = 1, CPU_AVX512 = 2 };

// Building with -DLORA_NO_X86 compiles every x86 path out (what a non-x86 build gets anyway);
// CI builds the C kernels that way so the portable-only build cannot rot.
#if (defined(__x86_64__) || defined(__i386__)) && !defined(LORA_NO_X86)
#define LORA_X86 1
#else
#define LORA_X86 0
#endif

// One meaning for each level's function attribute, matching the checks in cpu_features.c.
#if LORA_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#endif

// What the CPU has, ignoring LORA_KERNELS.
int cpu_detected_level(void);
int cpu_detected_vnni(void);
// The level every kernel uses: min(detected, LORA_KERNELS).
int cpu_kernel_level(void);
// AVX-512 VNNI, and the kernel level is CPU_AVX512.
int cpu_kernel_vnni(void);
// LORA_KERNELS as a level; -1 when unset, -2 when set to something else (the CLI refuses that).
int cpu_kernel_cap(void);

// What a kernel asks before taking a SIMD path.
static inline int cpu_use_avx2(void) { return cpu_kernel_level() >= CPU_AVX2; }
static inline int cpu_use_avx512(void) { return cpu_kernel_level() >= CPU_AVX512; }

#endif
