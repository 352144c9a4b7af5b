import Foundation

/// A minimal blocking HTTP/1.1 client for the loopback server: what `lora bench serve` and
/// the tests use to act as real clients (streaming reads, hanging up mid-stream) without
/// pulling in a full HTTP client library.
public struct LoopbackClient: Sendable {
    public let port: Int
    public var apiKey: String?

    public init(port: Int, apiKey: String? = nil) {
        self.port = port
        self.apiKey = apiKey
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: Data
        public var text: String { String(decoding: body, as: UTF8.self) }
        public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    }

    public enum Failure: Error, CustomStringConvertible {
        case connect(Int32), malformed(String)
        public var description: String {
            switch self {
            case .connect(let code): "could not connect to 127.0.0.1: \(String(cString: strerror(code)))"
            case .malformed(let why): "malformed HTTP response: \(why)"
            }
        }
    }

    /// Sends one request and reads the whole response.
    public func send(_ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:]) throws -> Response {
        var response: Response?
        try exchange(method, path, body: body, headers: headers) { status, headers in
            response = Response(status: status, headers: headers, body: Data())
            return true
        } onData: { data in
            response?.body.append(data)
            return true
        }
        guard let response else { throw Failure.malformed("no response") }
        return response
    }

    public func post(_ path: String, json: String) throws -> Response {
        try send("POST", path, body: Data(json.utf8), headers: ["Content-Type": "application/json"])
    }

    /// POSTs and hands over each server-sent event's data as it arrives; `onEvent` returning
    /// false hangs up at once. Returns the status.
    @discardableResult
    public func stream(_ path: String, json: String, onEvent: (String) -> Bool) throws -> Int {
        var status = 0, pending = ""
        try exchange("POST", path, body: Data(json.utf8), headers: ["Content-Type": "application/json"]) { code, _ in
            status = code
            return true
        } onData: { data in
            pending += String(decoding: data, as: UTF8.self)
            while let end = pending.range(of: "\n\n") {
                let event = String(pending[..<end.lowerBound])
                pending.removeSubrange(..<end.upperBound)
                if event.hasPrefix("data: "), !onEvent(String(event.dropFirst(6))) { return false }
            }
            return true
        }
        return status
    }

    /// The request, then the response head and body (chunked or not) as they arrive.
    /// A TCP connection to the server, for callers that write raw bytes (half-sent requests,
    /// hang-ups); the caller closes it.
    public func connectedSocket() throws -> Int32 {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure.connect(errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(socket)
            throw Failure.connect(code)
        }
        return socket
    }

    private func exchange(
        _ method: String, _ path: String, body: Data?, headers: [String: String],
        onHead: (Int, [String: String]) -> Bool, onData: (Data) -> Bool
    ) throws {
        let socket = try connectedSocket()
        defer { close(socket) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if let apiKey { head += "Authorization: Bearer \(apiKey)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body?.count ?? 0)\r\n\r\n"
        var request = Data(head.utf8)
        if let body { request.append(body) }
        try request.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = Foundation.send(socket, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                guard n > 0 else { throw Failure.connect(errno) }
                sent += n
            }
        }

        var buffer = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        func read() -> Bool {
            let n = recv(socket, &chunk, chunk.count, 0)
            guard n > 0 else { return false }
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
        let separator = Data("\r\n\r\n".utf8)
        var headEnd = buffer.range(of: separator)
        while headEnd == nil {
            guard read() else { throw Failure.malformed("connection closed before the headers ended") }
            headEnd = buffer.range(of: separator)
        }
        let lines = String(decoding: buffer[..<headEnd!.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw Failure.malformed(lines[0]) }
        var responseHeaders: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            responseHeaders[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        buffer.removeSubrange(..<headEnd!.upperBound)
        guard onHead(status, responseHeaders) else { return }
        let chunked = responseHeaders["transfer-encoding"]?.lowercased() == "chunked"
        let length = responseHeaders["content-length"].flatMap(Int.init)
        if !chunked {
            while length.map({ buffer.count < $0 }) ?? true, read() {}
            _ = onData(length.map { Data(buffer.prefix($0)) } ?? buffer)
            return
        }
        // Chunked: "<hex size>\r\n<data>\r\n" ... "0\r\n\r\n".
        let lineEnd = Data("\r\n".utf8)
        while true {
            var sizeEnd = buffer.range(of: lineEnd)
            while sizeEnd == nil {
                guard read() else { return }
                sizeEnd = buffer.range(of: lineEnd)
            }
            let sizeText = String(decoding: buffer[..<sizeEnd!.lowerBound], as: UTF8.self).split(separator: ";")[0]
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { throw Failure.malformed("chunk size '\(sizeText)'") }
            if size == 0 { return }
            let start = sizeEnd!.upperBound
            while buffer.count < start - buffer.startIndex + size + 2 {
                guard read() else { throw Failure.malformed("connection closed inside a chunk") }
            }
            let data = Data(buffer[start..<(start + size)])
            buffer.removeSubrange(..<(start + size + 2))
            buffer = Data(buffer)
            guard onData(data) else { return }
        }
    }
}
