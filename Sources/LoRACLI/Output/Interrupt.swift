import Foundation
import Synchronization

/// Ctrl-C (SIGINT) and SIGTERM. Work that can stop cleanly (training and sweeps, which save a
/// checkpoint) calls `beginGracefulPhase` when its steps start; from then a signal only sets a flag it polls between steps.
/// Everywhere else (loading, tokenizing, evaluating) a signal ends the process at once: every
/// file is written to a temporary name and renamed, and the registry is transactional, so
/// there is nothing to finish, and no phase can make Ctrl-C wait for it.
/// `lora serve` installs its own handlers (graceful drain) through service-lifecycle.
enum Interrupt {
    private static let requested = Atomic<Bool>(false)
    private static let deferred = Atomic<Bool>(false)

    static func install() {
        // A parent may start us with these blocked (the mask is inherited; Foundation's
        // Process does it): then Ctrl-C would wait, pending, forever.
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        sigaddset(&unblocked, SIGINT)
        sigaddset(&unblocked, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)
        for signalNumber in [SIGINT, SIGTERM] {
            // Only async-signal-safe work here: an atomic load or store, and _exit.
            signal(signalNumber) { number in
                guard Interrupt.deferred.load(ordering: .relaxed), !Interrupt.requested.load(ordering: .relaxed) else {
                    _exit(128 + number)
                }
                Interrupt.requested.store(true, ordering: .relaxed)
            }
        }
    }

    /// From here on a signal only sets `isRequested` (training steps poll it); a second
    /// signal still ends the process.
    static func beginGracefulPhase() { deferred.store(true, ordering: .relaxed) }

    static var isRequested: Bool { requested.load(ordering: .relaxed) }
}
