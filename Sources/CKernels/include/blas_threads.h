#ifndef BLAS_THREADS_H
#define BLAS_THREADS_H

// After each multi-threaded call OpenBLAS's worker threads keep spinning (sched_yield) for
// 2^28 cycles, ~73 ms, before they sleep. Between its GEMMs a training step runs attention,
// LoRA and the element-wise kernels on our own worker pool, on the same two cores, so a
// spinning OpenBLAS thread takes CPU from them. OpenBLAS reads OPENBLAS_THREAD_TIMEOUT (the
// exponent) only while it initialises, before main; this sets it to `exponent` unless the
// user already set it, has OpenBLAS read its environment again and stops its threads, which it
// starts again, with the new timeout, at its next multi-threaded call. Must run before any
// other thread calls BLAS. Returns 1 if applied, 0 if the variable was set or the library is
// not OpenBLAS (its symbols are looked up at run time).
int blas_threads_set_spin_exponent(int exponent);

#endif
