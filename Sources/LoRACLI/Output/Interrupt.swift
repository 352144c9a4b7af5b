import Foundation
import Synchronization

/// Ctrl-C (SIGINT) and SIGTERM as a flag that long work polls between steps, so it can save its
/// state and exit cleanly instead of dying mid-write. Storing to a lock-free atomic is
/// async-signal-safe, which is all the handler does.
enum Interrupt {
    private static let requested = Atomic<Bool>(false)

    static func install() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { _ in Interrupt.requested.store(true, ordering: .relaxed) }
        }
    }

    static var isRequested: Bool { requested.load(ordering: .relaxed) }
}
