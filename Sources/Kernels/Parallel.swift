import Dispatch

/// Splits independent work (attention heads, rows) across cores.
public enum Parallel {
    /// Calls `body(i)` for every `i` in `0..<count`, on all cores when `count` is large enough.
    /// Callers must only write to memory that iteration `i` owns; that is what makes the
    /// concurrent writes through raw pointers in the kernels race-free.
    public static func forEach(_ count: Int, minimumPerThread: Int = 1, _ body: (Int) -> Void) {
        if count < 2 * minimumPerThread {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: count) { i in body(i) }
        }
    }
}
