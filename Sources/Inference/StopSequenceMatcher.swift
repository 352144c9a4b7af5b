/// OpenAI's `stop`: generation ends where any stop string first appears, and the string itself
/// is not returned. While streaming, text that could be the start of a stop string is held back
/// until it is known not to be one.
public struct StopSequenceMatcher {
    let stops: [String]
    private var pending = ""

    public init(_ stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
    }

    /// Adds generated text; returns what can be sent now and whether a stop string was reached.
    public mutating func feed(_ piece: String) -> (text: String, stopped: Bool) {
        guard !stops.isEmpty else { return (piece, false) }
        pending += piece
        if let cut = stops.compactMap({ pending.range(of: $0)?.lowerBound }).min() {
            let text = String(pending[..<cut])
            pending = ""
            return (text, true)
        }
        // Hold back the longest tail that begins some stop string.
        var hold = 0
        for stop in stops {
            for length in stride(from: min(stop.count - 1, pending.count), to: 0, by: -1)
            where pending.hasSuffix(stop.prefix(length)) {
                hold = max(hold, length)
                break
            }
        }
        let text = String(pending.dropLast(hold))
        pending = String(pending.suffix(hold))
        return (text, false)
    }

    /// At the end of generation: whatever was held back (and `rest`), cut at a stop string.
    public mutating func flush(_ rest: String) -> String {
        let (text, stopped) = feed(rest)
        if stopped { return text }
        defer { pending = "" }
        return text + pending
    }
}
