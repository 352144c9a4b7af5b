import Foundation

/// Progress on standard error: a redrawn bar with step, loss, tokens/s and ETA on a terminal,
/// one plain line per report otherwise (logs and CI stay readable).
struct ProgressBar {
    let total: Int
    let interactive = isatty(STDERR_FILENO) != 0
    private var lastLength = 0

    init(total: Int) {
        self.total = total
    }

    mutating func update(step: Int, loss: Double, tokensPerSecond: Double, elapsed: Double, startStep: Int) {
        let done = max(step - startStep, 1)
        let eta = elapsed / Double(done) * Double(total - step)
        draw(done: step, status: "step \(step)/\(total)  loss \(String(format: "%.4f", loss))  \(Int(tokensPerSecond)) tok/s  ETA \(Self.duration(eta))")
    }

    /// Progress of work that is not training: `label done/total` and the ETA. Off a terminal,
    /// only about every tenth of the way is printed.
    mutating func update(_ label: String, done: Int, elapsed: Double) {
        let eta = elapsed / Double(max(done, 1)) * Double(total - done)
        let tenth = max(total / 10, 1)
        guard interactive || done % tenth == 0 || done == total else { return }
        draw(done: done, status: "\(label) \(done)/\(total)  ETA \(Self.duration(eta))")
    }

    private mutating func draw(done step: Int, status: String) {
        if interactive {
            let width = 24
            let filled = total > 0 ? width * step / total : width
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let line = "\r\(bar) \(status)"
            let padding = String(repeating: " ", count: max(0, lastLength - line.count))
            FileHandle.standardError.write(Data((line + padding).utf8))
            lastLength = line.count
        } else {
            line(status)
        }
    }

    /// A line of its own (validation, checkpoint), keeping the bar below it on a terminal.
    mutating func line(_ text: String) {
        if interactive && lastLength > 0 {
            FileHandle.standardError.write(Data("\r\(String(repeating: " ", count: lastLength))\r".utf8))
            lastLength = 0
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    mutating func finish() {
        if interactive && lastLength > 0 { FileHandle.standardError.write(Data("\n".utf8)) }
        lastLength = 0
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}
