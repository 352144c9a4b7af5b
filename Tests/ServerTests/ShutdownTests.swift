import Foundation
import Server
import Synchronization
import Testing
import TestSupport

/// SIGTERM to `lora serve` while a request streams: the request still ends properly (finish
/// reason, [DONE]), new connections are refused, and the process exits 0.
struct ShutdownTests {
    static let lora = "\(Fixtures.packageRoot)/.build/release/lora"

    @Test func sigtermLetsTheRunningRequestFinish() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.lora), "build the lora product first (swift build -c release)")
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.lora)
        process.arguments = ["serve", "--port", "0", "--model", Fixtures.modelPath, "--store", "\(directory)/store", "--served-model-name", "smol"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // "serving … on http://127.0.0.1:PORT (…"
        var line = ""
        while !line.contains("\n") {
            let data = output.fileHandleForReading.availableData
            try #require(!data.isEmpty, "lora serve exited before listening")
            line += String(decoding: data, as: UTF8.self)
        }
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) })
        let client = LoopbackClient(port: port)

        var pieces = 0, done = false, finish: String?
        let status = try client.stream(
            "/v1/chat/completions",
            json: #"{"model": "smol", "messages": [{"role": "user", "content": "Tell me about Paris."}], "max_tokens": 40, "temperature": 0, "stream": true}"#
        ) { data in
            if data == "[DONE]" { done = true; return true }
            pieces += 1
            if pieces == 2 { kill(process.processIdentifier, SIGTERM) }
            if let chunk = (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any],
                let reason = (chunk["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String
            {
                finish = reason
            }
            return true
        }
        #expect(status == 200)
        #expect(pieces > 3 && done && finish != nil, "the in-flight request was cut off")
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(throws: LoopbackClient.Failure.self) { try client.send("GET", "/health") }
    }
}
