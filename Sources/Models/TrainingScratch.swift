/// Buffers a training loop keeps from one step to the next. The head's logits block
/// (`LlamaModel.headChunk` rows × V: 100 MB for SmolLM2) is larger than glibc's largest mmap
/// threshold (32 MiB), so allocating it afresh each step would map it and fault every page in
/// again, each step.
public final class TrainingScratch {
    private var logits = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)

    public init() {}

    deinit { logits.deallocate() }

    /// Room for `count` floats of logits (grown, never shrunk); contents are undefined.
    func logits(count: Int) -> UnsafeMutablePointer<Float> {
        if logits.count < count {
            logits.deallocate()
            logits = .allocate(capacity: count)
        }
        return logits.baseAddress!
    }
}
