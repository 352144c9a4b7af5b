import CBLAS
import CKernels
import Synchronization

/// Dimension letters used in every kernel signature (llm.c's convention):
/// `T` tokens, `C` hidden size, `H` query heads, `Hkv` key/value heads, `D` head dimension,
/// `F` feed-forward size, `V` vocabulary, `R` LoRA rank, `L` layers.
///
/// Matrices are row-major `[rows, columns]` Float32 buffers. Weight matrices use the
/// Hugging Face layout `[out, in]`, so a projection is `y = x · Wᵀ`.
public enum BLAS {
    /// OpenBLAS worker threads for every following GEMM/GEMV call.
    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// Lets OpenBLAS's idle threads sleep after ~18 µs (2^16 cycles) instead of spinning ~73 ms
    /// while our own threads work between its calls (see blas_threads.h): the spinning took the
    /// cores our training threads need (figures in docs/performance.md); prefill and decode
    /// are unchanged.
    /// For a process's entry point, before any BLAS call; `OPENBLAS_THREAD_TIMEOUT` overrides.
    public static func sleepIdleThreadsPromptly() {
        _ = blas_threads_set_spin_exponent(16)
    }

    /// Runs `body` with OpenBLAS on one thread (while our own threads run many small GEMMs side
    /// by side), then restores the count. OpenBLAS's count is one setting for the whole process,
    /// so sections are counted: the count is saved when the first begins and restored when the
    /// last ends. Saving and restoring per call let two threads' sections restore out of order
    /// and leave OpenBLAS on one thread for good, and sgemm's results depend on its thread
    /// count, so the same loss came out different within one process.
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        sections.withLock { state in
            if state.depth == 0 {
                state.saved = threadCount
                setThreadCount(1)
            }
            state.depth += 1
        }
        defer {
            sections.withLock { state in
                state.depth -= 1
                if state.depth == 0 { setThreadCount(state.saved) }
            }
        }
        return try body()
    }

    private static let sections = Mutex((depth: 0, saved: 1))
}

public enum Memory {
    /// Keeps freed memory for reuse instead of returning it to the system (see memory_tuning.h).
    /// Called by the processes that train or decode; harmless elsewhere.
    public static func keepFreedPages() {
        memory_keep_freed_pages()
    }
}

extension Array where Element == Float {
    /// A buffer the caller overwrites completely before reading (no zero-fill pass).
    public static func uninitialized(_ count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }
}
