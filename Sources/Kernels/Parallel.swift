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

    /// Splits `0..<count` into contiguous ranges, one task each, for cheap per-element loops
    /// where a task per element would cost more than the work.
    public static func forRanges(_ count: Int, tasks: Int = 8, minimumPerTask: Int = 4096, _ body: (Range<Int>) -> Void) {
        let taskCount = max(1, min(tasks, count / max(minimumPerTask, 1)))
        let size = (count + taskCount - 1) / taskCount
        forEach(taskCount) { task in
            let range = (task * size)..<min(count, (task + 1) * size)
            if !range.isEmpty { body(range) }
        }
    }
}
