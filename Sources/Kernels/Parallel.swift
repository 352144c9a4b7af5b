import CKernels
import Dispatch

/// Splits independent work (attention heads, rows) across cores.
public enum Parallel {
    /// Threads taking part in each loop, the caller included (default: one per CPU).
    public static func setThreadCount(_ count: Int) {
        worker_pool_set_threads(Int32(max(1, count)))
    }

    /// Calls `body(i)` for every `i` in `0..<count`, on all cores when `count` is large enough.
    /// Callers must only write to memory that iteration `i` owns; that is what makes the
    /// concurrent writes through raw pointers in the kernels race-free.
    ///
    /// Loops run on the spinning workers of `worker_pool.c`; a loop started while the pool is
    /// busy (on another thread, or nested in a loop) runs on Dispatch's threads instead.
    public static func forEach(_ count: Int, minimumPerThread: Int = 1, _ body: (Int) -> Void) {
        if count < 2 * minimumPerThread {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var task = body
            let ran = withUnsafeMutablePointer(to: &task) { task in
                worker_pool_run(Int32(count), task) { context, index in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(index))
                }
            }
            guard ran == 0 else { return }
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
