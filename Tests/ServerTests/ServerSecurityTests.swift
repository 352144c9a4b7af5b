import Foundation
import Inference
import LoRA
import Models
import Registry
import Server
import Testing
import TestSupport
import Tokenizers

/// What an attacker on the network, or a page in the user's browser, could do before: replace a
/// registered adapter through a runtime load, send cross-origin "simple" requests, unload what
/// stays served.
@Suite(.serialized)
struct ServerSecurityTests {
    static func post(_ client: LoopbackClient, _ path: String, _ json: String, headers: [String: String] = [:]) async throws -> LoopbackClient.Response {
        try await offPool { try client.send("POST", path, body: Data(json.utf8), headers: ["Content-Type": "application/json"].merging(headers) { $1 }) }
    }

    @Test func runtimeLoadsCannotTakeRegisteredNamesAndStayInTheirNamespace() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let languageModel = try LanguageModel.load(path: Fixtures.modelPath)
        let store = try ServerTests.makeStore(directory, languageModel: languageModel)
        let running = try await ServerTests.start(languageModel: languageModel, store: store)
        defer { Task { await running.stop() } }
        let client = running.client
        let load = "/v1/load_lora_adapter", unload = "/v1/unload_lora_adapter"
        let gammaPath = "\(directory)/gamma"
        func loading(_ name: String, _ path: String = "\(directory)/gamma", extra: String = "") async throws -> LoopbackClient.Response {
            let body = try JSONSerialization.data(withJSONObject: ["lora_name": name, "lora_path": path])
            return try await Self.post(client, load, String(decoding: body, as: UTF8.self).dropLast() + extra + "}")
        }
        let alphaBefore = try await Self.post(client, "/v1/chat/completions", ServerTests.chatBody("alpha@1", ServerTests.question))
        for name in ["alpha@1", "alpha", "smol", "../evil", "<script>x</script>", "a@1", String(repeating: "n", count: 5000), "", "-lead"] {
            let response = try await loading(name)
            #expect(response.status == 400, "\(name.prefix(40))")
            #expect(response.json.flatMap { ($0["error"] as? [String: Any])?["param"] as? String } == "lora_name", "\(name.prefix(40))")
        }
        // The registered adapter still answers as before, and is listed once.
        let alphaAfter = try await Self.post(client, "/v1/chat/completions", ServerTests.chatBody("alpha@1", ServerTests.question))
        #expect(ServerTests.content(alphaAfter) == ServerTests.content(alphaBefore))
        #expect(try await loading("fresh").status == 200)
        #expect(try await loading("fresh").status == 400, "loading a taken name again")
        let ids = try #require(try await client.offSend("GET", "/v1/models").json?["data"] as? [[String: Any]]).compactMap { $0["id"] as? String }
        #expect(ids.count == Set(ids).count && ids.filter { $0 == "fresh" }.count == 1 && ids.filter { $0 == "alpha@1" }.count == 1)
        // Registered adapters and the base are not the API's to unload; a second unload is a 404.
        #expect(try await Self.post(client, unload, #"{"lora_name": "alpha"}"#).status == 400)
        #expect(try await Self.post(client, unload, #"{"lora_name": "smol"}"#).status == 400)
        #expect(try await Self.post(client, unload, #"{"lora_name": "fresh"}"#).status == 200)
        #expect(try await Self.post(client, unload, #"{"lora_name": "fresh"}"#).status == 404)
        #expect(try await client.offPost("/v1/chat/completions", json: ServerTests.chatBody("alpha", ServerTests.question)).status == 200)

        // A PEFT folder naming another base is refused unless forced; NaN weights always, by tensor.
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(gammaPath)/adapter_config.json"))) as? [String: Any])
        let foreign = "\(directory)/foreign"
        try FileManager.default.copyItem(atPath: gammaPath, toPath: foreign)
        try JSONSerialization.data(withJSONObject: config.merging(["base_model_name_or_path": "meta-llama/Llama-2-7b-hf"]) { $1 })
            .write(to: URL(fileURLWithPath: "\(foreign)/adapter_config.json"))
        let refused = try await loading("foreign", foreign)
        #expect(refused.status == 400 && refused.text.contains("Llama-2-7b-hf"))
        #expect(try await loading("foreign", foreign, extra: #", "force": true"#).status == 200)
        var broken = ServerTests.randomAdapter(seed: 5, config: languageModel.model.config)
        broken.layers[3][.o]?.b[0] = .infinity
        try broken.savePEFT(to: "\(directory)/broken", baseModelName: "smol")
        let nan = try await loading("broken", "\(directory)/broken")
        #expect(nan.status == 400 && nan.text.contains("layers.3.self_attn.o_proj.lora_B"), "\(nan.text)")
    }

    @Test func runtimeLoadingIsOffByDefault() async throws {
        let languageModel = try LanguageModel.load(path: Fixtures.modelPath)
        let running = try await ServerTests.start(languageModel: languageModel, store: nil, allowRuntimeAdapters: false)
        defer { Task { await running.stop() } }
        let response = try await Self.post(running.client, "/v1/load_lora_adapter", #"{"lora_name": "x", "lora_path": "/tmp"}"#)
        #expect(response.status == 403 && response.text.contains("--allow-runtime-adapters"))
        #expect(try await Self.post(running.client, "/v1/unload_lora_adapter", #"{"lora_name": "x"}"#).status == 403)
    }

    /// A page on another origin cannot make the server act: its requests are refused whatever
    /// their shape, preflights included; the server's own page and listed origins work; bodies
    /// that are not JSON by Content-Type are refused (what a no-cors "simple" request sends).
    @Test func crossOriginRequestsAreRefusedUnlessAllowed() async throws {
        let languageModel = try LanguageModel.load(path: Fixtures.modelPath)
        let running = try await ServerTests.start(languageModel: languageModel, store: nil, corsOrigins: ["https://app.example.com"])
        defer { Task { await running.stop() } }
        let client = running.client
        let body = ServerTests.chatBody("smol", "Hi", maxTokens: 2)
        let evil = try await offPool { try client.send("POST", "/v1/chat/completions", body: Data(body.utf8), headers: ["Content-Type": "text/plain", "Origin": "http://evil.example"]) }
        #expect(evil.status == 403)
        let rebinding = try await offPool {
            try client.send("POST", "/v1/load_lora_adapter", body: Data(#"{"lora_name": "x", "lora_path": "/tmp"}"#.utf8), headers: ["Content-Type": "application/json", "Origin": "http://127.0.0.1.evil.example"])
        }
        #expect(rebinding.status == 403)
        let preflight = try await offPool { try client.send("OPTIONS", "/v1/chat/completions", headers: ["Origin": "http://evil.example", "Access-Control-Request-Method": "POST"]) }
        #expect(preflight.status == 403 && preflight.headers["access-control-allow-origin"] == nil)
        let own = try await Self.post(client, "/v1/chat/completions", body, headers: ["Origin": "http://127.0.0.1:\(running.port)"])
        #expect(own.status == 200)
        let listed = try await offPool { try client.send("OPTIONS", "/v1/chat/completions", headers: ["Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"]) }
        #expect(listed.status == 204 && listed.headers["access-control-allow-origin"] == "https://app.example.com")
        let fromListed = try await Self.post(client, "/v1/chat/completions", body, headers: ["Origin": "https://app.example.com"])
        #expect(fromListed.status == 200 && fromListed.headers["access-control-allow-origin"] == "https://app.example.com")
        let plain = try await offPool { try client.send("POST", "/v1/chat/completions", body: Data(body.utf8), headers: ["Content-Type": "text/plain"]) }
        #expect(plain.status == 415)
        let form = try await offPool { try client.send("POST", "/v1/chat/completions", body: Data(body.utf8)) }
        #expect(form.status == 415)
        // The Bearer scheme in any case (RFC 9110).
        let lower = LoopbackClient(port: running.port)
        let lowerCase = try await offPool {
            try lower.send("POST", "/v1/chat/completions", body: Data(body.utf8), headers: ["Content-Type": "application/json", "Authorization": "bearer \(ServerTests.apiKey)"])
        }
        #expect(lowerCase.status == 200)
    }
}

/// The OpenAI fields clients send: penalties and logit_bias change the answer as asked, a
/// request without a seed gets a fresh draw, and what is not implemented is a 400 naming it.
@Suite(.serialized)
struct OpenAIFieldTests {
    @Test func samplingFieldsAndRefusals() async throws {
        let languageModel = try LanguageModel.load(path: Fixtures.modelPath)
        let running = try await ServerTests.start(languageModel: languageModel, store: nil)
        defer { Task { await running.stop() } }
        let client = running.client
        func answer(_ extra: String, maxTokens: Int = 12, temperature: Double = 0) async throws -> LoopbackClient.Response {
            let body = ServerTests.chatBody("smol", "Write a list of fruits.", maxTokens: maxTokens, extra: extra)
                .replacingOccurrences(of: #""temperature": 0"#, with: #""temperature": \#(temperature)"#)
            return try await client.offPost("/v1/chat/completions", json: body)
        }
        let plain = try #require(ServerTests.content(try await answer("")))
        // A bias of +100 on one token makes greedy decoding pick it every time.
        let forced = languageModel.tokenizer.encode(" banana")[0]
        let biased = try #require(ServerTests.content(try await answer(#", "logit_bias": {"\#(forced)": 100}"#, maxTokens: 4)))
        #expect(biased == String(repeating: try languageModel.tokenizer.decode([forced]), count: 4))
        // A 32-token list repeats separators; strong penalties on what was generated change it.
        let list = try #require(ServerTests.content(try await answer("", maxTokens: 32)))
        let penalized = try #require(ServerTests.content(try await answer(#", "presence_penalty": 2, "frequency_penalty": 2"#, maxTokens: 32)))
        #expect(!plain.isEmpty && penalized != list, "\(penalized)")
        // No seed: two sampled answers differ (16 tokens at temperature 1.5); the same seed twice agrees.
        let first = ServerTests.content(try await answer("", maxTokens: 16, temperature: 1.5))
        let second = ServerTests.content(try await answer("", maxTokens: 16, temperature: 1.5))
        #expect(first != second)
        let seeded = [try await answer(#", "seed": 7"#, maxTokens: 16, temperature: 1.5), try await answer(#", "seed": 7"#, maxTokens: 16, temperature: 1.5)]
        #expect(ServerTests.content(seeded[0]) == ServerTests.content(seeded[1]))
        // Neutral values of unimplemented fields pass; their effects, and unknown fields, are refused by name.
        #expect(try await answer(#", "n": 1, "logprobs": false, "frequency_penalty": 0, "response_format": {"type": "text"}, "user": "u""#).status == 200)
        for (extra, param) in [
            (#", "top_logprobs": 3"#, "top_logprobs"), (#", "logprobs": true, "top_logprobs": 21"#, "top_logprobs"),
            (#", "response_format": {"type": "xml"}"#, "response_format.type"),
            (#", "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "string", "pattern": "a"}}}"#, "response_format.json_schema"),
            (#", "tools": [{"type": "function"}]"#, "tools"), (#", "best_of": 2"#, "best_of"), (#", "presence_penalty": 3"#, "presence_penalty"),
            (#", "logit_bias": {"999999": 5}"#, "logit_bias"), (#", "logit_bias": {"x": 5}"#, "logit_bias"),
        ] {
            let response = try await answer(extra)
            #expect(response.status == 400, "\(extra)")
            #expect((response.json?["error"] as? [String: Any])?["param"] as? String == param, "\(extra)")
        }
        let completion = try await client.offPost("/v1/completions", json: #"{"model": "smol", "prompt": "Hi", "max_tokens": 2, "echo": true}"#)
        #expect(completion.status == 400 && completion.text.contains("echo"))
        // n choices: indexed, each sampled from its own seed (seed + index), usage counting the prompt once.
        let three = try await answer(#", "n": 3, "seed": 11"#, maxTokens: 8, temperature: 1.2).json
        let choices = try #require(three?["choices"] as? [[String: Any]])
        #expect(choices.map { $0["index"] as? Int } == [0, 1, 2])
        let texts = choices.compactMap { ($0["message"] as? [String: Any])?["content"] as? String }
        #expect(texts.count == 3 && Set(texts).count > 1, "\(texts)")
        let alone = ServerTests.content(try await answer(#", "seed": 12"#, maxTokens: 8, temperature: 1.2))
        #expect(texts[1] == alone, "choice 1 samples with seed + 1")
        let usage = try #require(three?["usage"] as? [String: Any])
        let prompt = try languageModel.chatPrompt([ChatMessage(role: "user", content: "Write a list of fruits.")]).count
        #expect(usage["prompt_tokens"] as? Int == prompt)
        let streamed = try await ServerTests.streamed(
            client, ServerTests.chatBody("smol", "Write a list of fruits.", maxTokens: 6, stream: true, extra: #", "n": 2, "seed": 3"#)
                .replacingOccurrences(of: #""temperature": 0"#, with: #""temperature": 1"#))
        let finishes = streamed.chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first).flatMap { $0["finish_reason"] is String ? $0["index"] as? Int : nil } }
        #expect(streamed.done && finishes.sorted() == [0, 1])

        // GET /v1/models/{id}, max_model_len, /tokenize and /detokenize as vLLM has them.
        let context = languageModel.model.config.maxPositionEmbeddings
        let one = try await client.offSend("GET", "/v1/models/smol").json
        #expect(one?["id"] as? String == "smol" && one?["max_model_len"] as? Int == context)
        #expect(try await client.offSend("GET", "/v1/models/nothing").status == 404)
        let tokenized = try await client.offPost("/tokenize", json: #"{"prompt": "Hello world"}"#).json
        #expect(tokenized?["tokens"] as? [Int] == languageModel.tokenizer.encode("Hello world") && tokenized?["max_model_len"] as? Int == context)
        let chatIds = try await client.offPost("/tokenize", json: #"{"messages": [{"role": "user", "content": "Hi"}]}"#).json?["tokens"] as? [Int]
        #expect(chatIds == (try languageModel.chatPrompt([ChatMessage(role: "user", content: "Hi")])))
        let ids = languageModel.tokenizer.encode("naïve café")
        let detokenized = try await client.offPost("/detokenize", json: #"{"tokens": \#(ids)}"#).json
        #expect(detokenized?["prompt"] as? String == "naïve café")
        #expect(try await client.offPost("/detokenize", json: #"{"tokens": [99999999]}"#).status == 400)

        // Bodies that are not JSON objects say why.
        for (body, reason) in [(Data([0x7B, 0xFF, 0x7D]), "UTF-8"), (Data(#"{"model": "smol", "x": "\ud800"}"#.utf8), "parse")] {
            let response = try await offPool { try client.send("POST", "/v1/chat/completions", body: body, headers: ["Content-Type": "application/json"]) }
            #expect(response.status == 400 && response.text.contains(reason), "\(response.text)")
        }
    }
    /// logprobs (chat, completions, streamed) are the model's log-softmax of each chosen token, with the
    /// likeliest alternatives; response_format holds every answer to its schema, sampled or greedy.
    @Test func logprobsAndResponseFormat() async throws {
        let languageModel = try LanguageModel.load(path: Fixtures.modelPath)
        let running = try await ServerTests.start(languageModel: languageModel, store: nil)
        defer { Task { await running.stop() } }
        let client = running.client
        let question = "Write a list of fruits."

        let reply = try #require(try await client.offPost(
            "/v1/chat/completions", json: ServerTests.chatBody("smol", question, maxTokens: 8, extra: #", "logprobs": true, "top_logprobs": 3"#)).json)
        let choice = try #require((reply["choices"] as? [[String: Any]])?.first)
        let content = try #require((choice["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
        #expect(content.count == (reply["usage"] as? [String: Any])?["completion_tokens"] as? Int)
        #expect(content.compactMap { $0["token"] as? String }.joined() == (choice["message"] as? [String: Any])?["content"] as? String)
        // The first token's logprob is the log-softmax of the prompt's last logits; greedy picks the likeliest.
        let prompt = try languageModel.chatPrompt([ChatMessage(role: "user", content: question)])
        guard case .logits(let logits) = try languageModel.model.forward(prompt, cache: KVCache(config: languageModel.model.config, capacity: prompt.count + 1), greedy: false)
        else { Issue.record("no logits"); return }
        let expected = Sampler.logprobs(logits, token: logits.indices.max { logits[$0] < logits[$1] }!, top: 3)
        let first = content[0]
        #expect(abs((first["logprob"] as? Double ?? 1) - Double(expected.logprob)) < 1e-4)
        let top = try #require(first["top_logprobs"] as? [[String: Any]])
        #expect(top.count == 3 && (top[0]["logprob"] as? Double) == (first["logprob"] as? Double))
        #expect(top.compactMap { $0["bytes"] as? [Int] } == expected.top.map { try! languageModel.tokenizer.bytes(of: $0.token).map(Int.init) })
        #expect(zip(top, top.dropFirst()).allSatisfy { ($0["logprob"] as? Double ?? 0) >= ($1["logprob"] as? Double ?? 0) })

        let text = try #require(try await client.offPost("/v1/completions", json: #"{"model": "smol", "prompt": "The capital of France is", "max_tokens": 6, "temperature": 0, "logprobs": 2}"#).json)
        let textChoice = try #require((text["choices"] as? [[String: Any]])?.first)
        let lists = try #require(textChoice["logprobs"] as? [String: Any])
        let tokens = try #require(lists["tokens"] as? [String]), offsets = try #require(lists["text_offset"] as? [Int])
        #expect(tokens.joined() == textChoice["text"] as? String && tokens.count == 6)
        #expect(offsets == tokens.indices.map { tokens[..<$0].reduce(0) { $0 + $1.count } })
        #expect((lists["top_logprobs"] as? [[String: Double]])?.allSatisfy { $0.count == 2 } == true)

        let streamed = try await ServerTests.streamed(client, ServerTests.chatBody("smol", question, maxTokens: 8, stream: true, extra: #", "logprobs": true"#))
        let streamedTokens = streamed.chunks.flatMap { chunk -> [[String: Any]] in
            (((chunk["choices"] as? [[String: Any]])?.first?["logprobs"] as? [String: Any])?["content"] as? [[String: Any]]) ?? []
        }
        #expect(streamedTokens.compactMap { $0["logprob"] as? Double } == content.compactMap { $0["logprob"] as? Double })

        // Structured output: every answer parses and satisfies the schema.
        let schema = #"{"type": "object", "properties": {"city": {"type": "string", "maxLength": 24}, "population": {"type": "integer"}, "capital": {"type": "boolean"}}, "required": ["city", "population", "capital"]}"#
        for (temperature, seed) in [(0.0, 0), (1.0, 1), (1.0, 2), (1.3, 3)] {
            let body = ServerTests.chatBody("smol", "Give the largest city of France and its population as JSON.", maxTokens: 80, extra: #", "seed": \#(seed), "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": \#(schema)}}"#)
                .replacingOccurrences(of: #""temperature": 0"#, with: #""temperature": \#(temperature)"#)
            let response = try await client.offPost("/v1/chat/completions", json: body)
            let answer = try #require(ServerTests.content(response), "\(response.text)")
            let object = try #require(try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any], "\(answer)")
            #expect((object["city"] as? String).map { $0.count <= 24 } == true && object["population"] is Int && object["capital"] is Bool, "\(answer)")
            #expect(Set(object.keys) == ["city", "population", "capital"])
            #expect(((response.json?["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String) == "stop", "\(answer)")
        }
        let anyObject = try await client.offPost(
            "/v1/chat/completions", json: ServerTests.chatBody("smol", "Describe a cat as JSON.", maxTokens: 60, extra: #", "response_format": {"type": "json_object"}"#))
        let objectText = try #require(ServerTests.content(anyObject))
        let finish = (anyObject.json?["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String
        // Cut by max_tokens the text is a prefix of an object; finished, it is one.
        if finish == "stop" { #expect((try? JSONSerialization.jsonObject(with: Data(objectText.utf8))) is [String: Any], "\(objectText)") }
        #expect(objectText.hasPrefix("{"), "\(objectText)")
    }
}

/// A client that leaves stops its work within a step, streamed or not.
@Suite(.serialized)
struct DisconnectTests {
    /// Opens a connection, sends a completion request with `body`, and returns the socket for
    /// the test to close.
    static func sendAndHold(port: Int, _ body: String) throws -> Int32 {
        let socket = try connected(port: port)
        let request = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAuthorization: Bearer \(ServerTests.apiKey)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        _ = request.withCString { send(socket, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        return socket
    }

    static func connected(port: Int) throws -> Int32 { try LoopbackClient(port: port).connectedSocket() }

    @Test func anAbandonedCollectedRequestStopsDecoding() async throws {
        let languageModel = try LanguageModel.load(path: Fixtures.modelPath)
        let running = try await ServerTests.start(languageModel: languageModel, store: nil)
        defer { Task { await running.stop() } }
        let socket = try Self.sendAndHold(port: running.port, #"{"model": "smol", "prompt": "Once upon a time", "max_tokens": 3000, "temperature": 0}"#)
        var waited = 0
        while running.steps < 5 && waited < 400 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        try #require(running.steps >= 5, "the request never started decoding")
        close(socket)
        let stepsAtHangUp = running.steps
        waited = 0
        while running.server.engine.load.running > 0 && waited < 200 {
            try await Task.sleep(for: .milliseconds(20))
            waited += 1
        }
        #expect(running.server.engine.load.running == 0)
        #expect(running.steps - stepsAtHangUp < 50, "the abandoned request kept decoding: \(running.steps - stepsAtHangUp) more steps")
    }

    /// A request whose body never completes is closed after the read timeout, and not logged
    /// as too large; HEAD /health answers.
    @Test func halfSentRequestsAreClosed() async throws {
        let languageModel = try LanguageModel.load(path: Fixtures.modelPath)
        let running = try await ServerTests.start(languageModel: languageModel, store: nil, readTimeout: .milliseconds(300))
        defer { Task { await running.stop() } }
        #expect(try await offPool { try LoopbackClient(port: running.port).send("HEAD", "/health") }.status == 200)
        let socket = try Self.connected(port: running.port)
        defer { close(socket) }
        // Headers promise a 1,000-byte body; 10 bytes come, then nothing.
        let partial = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\": "
        _ = partial.withCString { send(socket, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        var received = 0, total = 0
        repeat {
            received = recv(socket, &buffer, buffer.count, 0)
            total += max(received, 0)
        } while received > 0
        #expect(received == 0, "the server did not close the connection (recv \(received), errno \(errno))")
        #expect(!String(decoding: buffer.prefix(total), as: UTF8.self).contains("413"))
    }
}
