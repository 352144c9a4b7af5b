import Hummingbird

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
struct APIError: Error, Sendable, Equatable {
    var status: HTTPResponse.Status
    var message: String
    var type: String
    var param: String?
    var code: String?
    /// Seconds, for 429 and 503 (`Retry-After`).
    var retryAfter: Int?

    static func invalid(_ message: String, param: String?) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: nil)
    }

    static func modelNotFound(_ message: String, param: String = "model") -> APIError {
        APIError(status: .notFound, message: message, type: "invalid_request_error", param: param, code: "model_not_found")
    }

    static let runtimeAdaptersOff = APIError(
        status: .forbidden, message: "Loading and unloading adapters at run time is off: start lora serve with --allow-runtime-adapters.",
        type: "permission_error", param: nil, code: "runtime_adapters_disabled")

    static func crossOrigin(_ origin: String) -> APIError {
        APIError(
            status: .forbidden, message: "Cross-origin request from '\(origin.prefix(200))' refused: start lora serve with --cors-origin \(origin.prefix(200)) to allow it.",
            type: "permission_error", param: nil, code: "cross_origin_refused")
    }

    static func unsupportedMediaType(_ contentType: String?) -> APIError {
        APIError(
            status: .unsupportedMediaType, message: "Send the body as JSON with 'Content-Type: application/json' (got \(contentType.map { "'\($0.prefix(100))'" } ?? "none")).",
            type: "invalid_request_error", param: nil, code: "unsupported_media_type")
    }

    static let unauthorized = APIError(
        status: .unauthorized, message: "Incorrect or missing API key: send 'Authorization: Bearer KEY'.", type: "authentication_error",
        param: nil, code: "invalid_api_key")

    static let queueFull = APIError(
        status: .tooManyRequests, message: "The server is busy: the request queue is full. Retry shortly.", type: "rate_limit_error",
        param: nil, code: "queue_full", retryAfter: 1)

    static let shuttingDown = APIError(
        status: .serviceUnavailable, message: "The server is shutting down.", type: "server_error", param: nil, code: "shutting_down",
        retryAfter: 5)

    static func notFound(_ path: String) -> APIError {
        APIError(status: .notFound, message: "No route for \(path).", type: "invalid_request_error", param: nil, code: "not_found")
    }

    struct Body: Encodable {
        struct Detail: Encodable {
            var message: String
            var type: String
            var param: Nullable<String>
            var code: Nullable<String>
        }

        var error: Detail
    }

    var body: Body { Body(error: .init(message: message, type: type, param: Nullable(param), code: Nullable(code))) }
}
