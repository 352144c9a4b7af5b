import Foundation
import Hummingbird

/// The browser-facing rules. A page on another origin can send a "simple" POST (text/plain, no
/// preflight) to a server on localhost; without these checks it could load adapters or spend the
/// server's time. So: a request that carries an `Origin` is served only when that origin is the
/// server's own (the playground) or one `--cors-origin` names; bodies must be
/// `application/json`, which no page can send cross-origin without a preflight we refuse.
enum CrossOrigin {
    /// `origin` is allowed when listed, or when it is this server's own origin (the playground)
    /// reached through a loopback name, an IP address, the configured host or this machine's
    /// name. A DNS-rebinding page also matches its own origin, but through a domain name of
    /// its owner's, which is none of these.
    static func isAllowed(_ origin: String, host authority: String?, configuration: LoRAServer.Configuration) -> Bool {
        if configuration.corsOrigins.contains(origin) || configuration.corsOrigins.contains("*") { return true }
        guard let authority, let url = URL(string: origin), let scheme = url.scheme, scheme == "http" || scheme == "https",
            let originHost = url.host
        else { return false }
        let port = url.port.map { ":\($0)" } ?? ""
        guard "\(originHost)\(port)".lowercased() == authority.lowercased() else { return false }
        let host = originHost.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let isAddress = host.contains(":") || (!host.isEmpty && host.allSatisfy { $0.isNumber || $0 == "." })
        return host == "localhost" || isAddress || host == configuration.host.lowercased()
            || host == ProcessInfo.processInfo.hostName.lowercased()
    }

    static func allow(_ origin: String, in headers: inout HTTPFields, preflight: Bool) {
        headers[.accessControlAllowOrigin] = origin
        headers[.vary] = "Origin"
        if preflight {
            headers[.accessControlAllowMethods] = "GET, POST, OPTIONS"
            headers[.accessControlAllowHeaders] = "Authorization, Content-Type"
            headers[.accessControlMaxAge] = "600"
        }
    }

    /// `application/json`, with or without parameters (`; charset=utf-8`).
    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let type = contentType.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        return type == "application/json"
    }
}

/// `Authorization: Bearer KEY`, the scheme in any case (RFC 9110), compared in constant time.
enum APIKey {
    static func matches(_ header: String?, key: String) -> Bool {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        let given = Array(header.dropFirst(7).trimmingCharacters(in: .whitespaces).utf8), expected = Array(key.utf8)
        var difference = given.count ^ expected.count
        for i in 0..<max(given.count, expected.count) {
            difference |= Int((i < given.count ? given[i] : 0) ^ (i < expected.count ? expected[i] : 0))
        }
        return difference == 0
    }
}
