import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// Files whose size grows an input's cost only linearly: a safetensors header full of string escapes,
/// and a checkpoint holding many epochs of metrics, are read within seconds.
final class LinearTimeReadingTests: XCTestCase {
    /// A safetensors file with no tensors and one metadata entry whose value is `escapedValue` (already
    /// JSON-escaped text).
    static func fileWithMetadataValue(_ escapedValue: String) -> [UInt8] {
        let header = Array("{\"__metadata__\":{\"k\":\"\(escapedValue)\"}}".utf8)
        let length = UInt64(header.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + header
    }

    func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// One million escaped quotes (a 2 MB string), and one million \u escapes, each parse in well under
    /// the limit: the reader is linear in the number of escapes.
    func testHeaderStringOfAMillionEscapesParsesQuickly() throws {
        for (unit, decoded) in [("\\\"", "\""), ("\\u00e9", "é"), ("\\n", "\n")] {
            let bytes = Self.fileWithMetadataValue(String(repeating: unit, count: 1_000_000))
            var file: SafetensorsFile?
            let elapsed = try seconds { file = try SafetensorsFile.parse(bytes: bytes, path: "escapes.safetensors") }
            XCTAssertEqual(file?.metadata["k"]?.count, 1_000_000, unit)
            XCTAssertEqual(file?.metadata["k"]?.first.map(String.init), decoded, unit)
            XCTAssertLessThan(elapsed, 5, "a header string of a million \(unit) escapes took \(elapsed) s")
        }
    }

    /// Escapes and raw text interleaved decode to the same string as before (surrogate pairs included).
    func testEscapesDecodeExactly() throws {
        let bytes = Self.fileWithMetadataValue("a\\\"b\\\\c\\/d\\b\\f\\n\\r\\te\\u00e9\\ud83d\\ude00é€")
        let file = try SafetensorsFile.parse(bytes: bytes, path: "escapes.safetensors")
        XCTAssertEqual(file.metadata["k"], "a\"b\\c/d\u{08}\u{0C}\n\r\te\u{E9}\u{1F600}é€")
    }

    /// A checkpoint that records 16,000 epochs of metrics (their JSON inside a header string, every
    /// quote escaped) is read within seconds.
    func testCheckpointWithSixteenThousandEpochsOfMetricsReadsQuickly() throws {
        let directory = try TinyData.makeDirectory(self)
        let out = try makeTemporaryDirectory(self, "mlpc-metrics")
        let text = TinyData.specText(optimizer: "{kind: sgd, lr: 0.05}", batch: 16)
        let (spec, plan, data) = try TinyData.prepare(text, directory: directory)
        let run = try TrainingRun(
            spec: spec, plan: plan, kernels: kernels(for: plan.target.isa), data: data,
            options: .init(epochs: 1, seed: spec.seed.value, outputDirectory: out, mlpcVersion: "test"))
        try run.prepareOutput()
        let metrics = try run.runEpoch(1)

        var file = try SafetensorsFile.parse(
            bytes: Array(try Data(contentsOf: URL(fileURLWithPath: run.checkpointPath))), path: run.checkpointPath)
        let epochs = 16_000
        file.metadata["epoch"] = String(epochs)
        file.metadata["epochs"] = String(epochs)
        file.metadata["metrics"] = "[" + Array(repeating: metrics.jsonLine(), count: epochs).joined(separator: ",") + "]"
        let path = out + "/many-epochs.safetensors"
        try file.write(to: path)

        var checkpoint: Checkpoint?
        let elapsed = try seconds { checkpoint = try Checkpoint.read(path: path, plan: plan) }
        XCTAssertEqual(checkpoint?.metrics.count, epochs)
        XCTAssertLessThan(elapsed, 5, "reading a checkpoint with \(epochs) epochs of metrics took \(elapsed) s")
    }
}
