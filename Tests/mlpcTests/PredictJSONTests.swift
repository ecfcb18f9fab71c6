import Foundation
import XCTest

/// `mlpc predict --format json`: every output as float32 values that read back exactly, for programs
/// (the ONNX export tests compare ONNX Runtime with it).
extension ModelFileCommandTests {
    struct PredictionsJSON: Decodable {
        struct Prediction: Decodable {
            var input: String
            var truth: Int?
            var predicted: Int
            var logits: [Float]
            var probabilities: [Float]
        }
        var model: String
        var loss: String
        var predictions: [Prediction]
    }

    func testPredictJSONGivesTheOutputsTheTextRounds() throws {
        let t = try crossEntropyRun()
        let picture = t.data + "/digit.png"
        let pixels = try testImage(1, in: t.data)
        try writeFile(picture, bytes: ArtifactCLI.png(width: 6, height: 6, rgbRows: gray(pixels, columns: 6)))
        let json = try MLPCProcess.run(["predict", t.model, picture, "--index", "2", "--index", "1", "--format", "json", "--invert", "never"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let report = try JSONDecoder().decode(PredictionsJSON.self, from: Data(json.stdout.utf8))
        XCTAssertEqual(report.model, t.model)
        XCTAssertEqual(report.loss, "cross_entropy")
        XCTAssertEqual(report.predictions.map(\.input), [picture, "test image 2", "test image 1"])
        XCTAssertEqual(report.predictions.map(\.truth), [nil, 2, 1])
        // The picture is test image 1's pixels: the same outputs, bit for bit.
        XCTAssertEqual(report.predictions[0].logits.map(\.bitPattern), report.predictions[2].logits.map(\.bitPattern))
        let text = try MLPCProcess.run(["predict", t.model, "--index", "2"])
        let printed = try printedValues(text.stdout, after: "test image 2: ")
        let prediction = report.predictions[1]
        XCTAssertEqual(prediction.probabilities.count, 3)
        for (p, q) in zip(prediction.probabilities, printed) { XCTAssertEqual(Double(p), q, accuracy: 5e-5) }
        XCTAssertEqual(Double(prediction.probabilities.reduce(0, +)), 1, accuracy: 1e-6)
        XCTAssertEqual(prediction.predicted, prediction.logits.indices.max { prediction.logits[$0] < prediction.logits[$1] })
        let expected = try outputs(of: try TensorFile(path: t.model), pixels: try testImage(2, in: t.data), mean: 0.5, std: 0.5)
        for (logit, exact) in zip(prediction.logits, expected) { XCTAssertEqual(Double(logit), exact, accuracy: 1e-4) }
    }

    func testPredictRefusesTheDotFormat() throws {
        let result = try MLPCProcess.run(["predict", "whatever.safetensors", "--index", "0", "--format", "dot"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("text or json"), result.stderr)
    }
}
