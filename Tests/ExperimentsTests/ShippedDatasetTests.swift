import Foundation
import Testing
import TestSupport
import Training

/// The datasets in `datasets/` are what the generator makes, and their test splits are held out
/// by construction: no example, answer or entity of a test split occurs in training data.
struct ShippedDatasetTests {
    static let root = "\(Fixtures.packageRoot)/datasets"
    static let tasks = ["dates", "extract", "numbers"]

    static func records(_ task: String, _ split: String) throws -> [DatasetRecord] {
        try DatasetRecord.load(path: "\(root)/\(task)/\(split).jsonl").map(\.record)
    }

    static func completions(_ records: [DatasetRecord]) -> [(prompt: String, completion: String)] {
        records.compactMap { if case .completion(let p, let c) = $0 { (p, c) } else { nil } }
    }

    @Test func generatorIsDeterministicAndMatchesTheShippedFiles() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for run in ["a", "b"] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "\(Fixtures.packageRoot)/scripts/make_datasets.py", "--out", "\(directory)/\(run)"]
            try process.run()
            process.waitUntilExit()
            try #require(process.terminationStatus == 0)
        }
        for task in Self.tasks + ["licenses"] {
            for file in ["train.jsonl", "valid.jsonl", "test.jsonl", "README.md"] {
                let a = FileManager.default.contents(atPath: "\(directory)/a/\(task)/\(file)")
                let b = FileManager.default.contents(atPath: "\(directory)/b/\(task)/\(file)")
                let shipped = FileManager.default.contents(atPath: "\(Self.root)/\(task)/\(file)")
                #expect(a != nil && a == b, "\(task)/\(file) differs between two runs")
                #expect(a == shipped, "\(task)/\(file) on disk is not what the generator makes")
            }
        }
    }

    @Test(arguments: tasks) func testSplitSharesNoExampleOrAnswerWithTraining(task: String) throws {
        let test = Self.completions(try Self.records(task, "test"))
        #expect(test.count == 200)
        for split in ["train", "valid"] {
            let seen = Self.completions(try Self.records(task, split))
            let prompts = Set(seen.map(\.prompt)), answers = Set(seen.map(\.completion))
            #expect(test.filter { prompts.contains($0.prompt) }.isEmpty, "\(task): test prompts found in \(split)")
            #expect(test.filter { answers.contains($0.completion) }.isEmpty, "\(task): test answers found in \(split)")
        }
    }

    @Test func extractTestEntitiesNeverOccurInTraining() throws {
        let training = Self.completions(try Self.records("extract", "train") + Self.records("extract", "valid"))
        // Words only, space-delimited, so "Berg" is not found inside "Bergen".
        let words = { (text: String) in " " + String(text.map { $0.isLetter || $0.isNumber ? $0 : " " }) + " " }
        let trainingText = words(training.map { $0.prompt }.joined(separator: "\n"))
        var entities = Set<String>()
        for (_, completion) in Self.completions(try Self.records("extract", "test")) {
            let json = try #require(try JSONSerialization.jsonObject(with: Data(completion.utf8)) as? [String: Any])
            let name = try #require(json["name"] as? String)
            entities.formUnion(name.split(separator: " ").map(String.init))
            entities.insert(try #require(json["city"] as? String))
            entities.insert(try #require(json["product"] as? String))
        }
        #expect(entities.count > 20)
        for entity in entities {
            #expect(!trainingText.contains(words(entity)), "test entity '\(entity)' occurs in train/valid")
        }
    }

    @Test func datesTestYearsNeverOccurInTraining() throws {
        let year = { (iso: String) in String(iso.prefix(4)) }
        let trainingYears = Set(Self.completions(try Self.records("dates", "train") + Self.records("dates", "valid")).map { year($0.completion) })
        for (_, completion) in Self.completions(try Self.records("dates", "test")) {
            #expect(!trainingYears.contains(year(completion)), "test year \(year(completion)) occurs in training")
        }
    }

    @Test func licenseTestParagraphsAreNotInTraining() throws {
        func paragraphs(_ split: String) throws -> Set<String> {
            Set(try Self.records("licenses", split).flatMap { record -> [String] in
                guard case .text(let text) = record else { return [] }
                return text.components(separatedBy: "\n\n").map { $0.lowercased() }
            })
        }
        let train = try paragraphs("train")
        for split in ["valid", "test"] {
            let held = try paragraphs(split)
            #expect(!held.isEmpty)
            #expect(held.intersection(train).isEmpty, "\(split) paragraphs found in train")
        }
    }
}
