import Foundation
import XCTest

/// `mlpc eval`, `predict` and `show` on model files and paths a user can get wrong or an attacker can
/// forge: outputs that overflow, flat inputs, mse models, embedded specs, hostile names, paths that
/// are not files, exit statuses, test sets missing a class, files of another format.
final class ModelFileCommandTests: XCTestCase {
    struct Trained {
        var data: String
        var run: String
        var spec: String
        var model: String { run + "/model.safetensors" }
    }

    /// Runs trained once for the whole class, by spec variant; removed in the class tear-down.
    nonisolated(unsafe) static var runs: [String: Trained] = [:]
    nonisolated(unsafe) static var roots: [String] = []

    override class func tearDown() {
        for root in roots { try? FileManager.default.removeItem(atPath: root) }
        roots = []
        runs = [:]
        super.tearDown()
    }

    /// The tiny 6x6 dataset trained with `spec` (its input shape and loss vary by test).
    func trained(_ key: String, spec text: String, dataset: (String) throws -> Void = { try TinyDataset.write(to: $0) }) throws -> Trained {
        if let run = Self.runs[key] { return run }
        let root = try createTemporaryDirectory("mlpc-modelfile-\(key)")
        Self.roots.append(root)
        try dataset(root)
        let spec = root + "/tiny.yaml"
        try writeFile(spec, text)
        let result = try MLPCProcess.run(["run", spec, "--data-dir", root, "--out", root + "/run", "--quiet"], timeout: 120)
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, "training \(key) failed: \(result.stderr)")
        guard result.status == 0 else { throw XCTSkip("training \(key) failed (reported above)") }
        let run = Trained(data: root, run: root + "/run", spec: spec)
        Self.runs[key] = run
        return run
    }

    func crossEntropyRun() throws -> Trained { try trained("image", spec: TinyDataset.spec(epochs: 15)) }

    func flatRun() throws -> Trained {
        try trained("flat36", spec: Self.spec(inputShape: "[36]", layers: ["linear: {out: 16, activation: relu}", "linear: {out: 3}"]))
    }

    // MARK: spec text and model files made here

    static func spec(inputShape: String, layers: [String], loss: String = "cross_entropy", normalize: Bool = true) -> String {
        """
        name: tiny
        seed: 7
        data:
          dir: unused
        \(normalize ? "  normalize: {mean: 0.5, std: 0.5}\n" : "")model:
          input_shape: \(inputShape)
          layers:
        \(layers.map { "    - " + $0 }.joined(separator: "\n"))
        loss: \(loss)
        optimizer: {kind: adam, lr: 0.01}
        training:
          batch_size: 16
          epochs: 15
          threads: 1

        """
    }

    /// A safetensors file taken apart: metadata and F32 tensors, in file order.
    struct TensorFile {
        var metadata: [String: String]
        var tensors: [(name: String, shape: [Int], values: [Float])]

        init(path: String) throws {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let length = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
            let header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as? [String: Any])
            metadata = header["__metadata__"] as? [String: String] ?? [:]
            var found: [(name: String, shape: [Int], values: [Float], begin: Int)] = []
            for (name, entry) in header where name != "__metadata__" {
                let fields = try XCTUnwrap(entry as? [String: Any])
                let shape = try XCTUnwrap(fields["shape"] as? [Int])
                let offsets = try XCTUnwrap(fields["data_offsets"] as? [Int])
                let start = 8 + length + offsets[0]
                let values = stride(from: start, to: 8 + length + offsets[1], by: 4).map { at in
                    Float(bitPattern: UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24)
                }
                found.append((name, shape, values, offsets[0]))
            }
            tensors = found.sorted { $0.begin < $1.begin }.map { ($0.name, $0.shape, $0.values) }
        }

        func values(_ name: String) throws -> [Float] { try XCTUnwrap(tensors.first { $0.name == name }).values }

        mutating func set(_ name: String, _ values: [Float]) throws {
            let index = try XCTUnwrap(tensors.firstIndex { $0.name == name })
            XCTAssertEqual(values.count, tensors[index].values.count)
            tensors[index].values = values
        }

        func write(to path: String) throws {
            var header: [String: Any] = [:]
            if !metadata.isEmpty { header["__metadata__"] = metadata }
            var data: [UInt8] = []
            for tensor in tensors {
                header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [data.count, data.count + 4 * tensor.values.count]]
                for value in tensor.values { data += withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
            }
            var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
            json += [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8)
            let bytes = withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + data
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
    }

    /// Test image `index` of the dataset in `directory` (the uncompressed IDX file TinyDataset writes).
    func testImage(_ index: Int, in directory: String, side: (rows: Int, columns: Int) = (6, 6)) throws -> [UInt8] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + TinyDataset.testImages)))
        let n = side.rows * side.columns
        return Array(bytes[(16 + index * n)..<(16 + (index + 1) * n)])
    }

    /// The per-class values `predict` prints under an image's line.
    func printedValues(_ output: String, after title: String) throws -> [Double] {
        let lines = output.components(separatedBy: "\n")
        let start = try XCTUnwrap(lines.firstIndex { $0.hasPrefix(title) }, output)
        return lines[(start + 1)...].prefix { $0.hasPrefix("  ") }.compactMap { line in
            line.split(separator: " ").dropFirst().first.flatMap { Double($0) }
        }
    }

    /// The tiny model's forward pass (linear, relu, linear), computed here from the file's tensors.
    func outputs(of file: TensorFile, pixels: [UInt8], mean: Double, std: Double) throws -> [Double] {
        let x = pixels.map { (Double($0) / 255 - mean) / std }
        let w1 = try file.values("fc1.weight"), b1 = try file.values("fc1.bias")
        let w2 = try file.values("fc2.weight"), b2 = try file.values("fc2.bias")
        let hidden = b1.indices.map { j in max(0, Double(b1[j]) + x.indices.reduce(0) { $0 + Double(w1[j * x.count + $1]) * x[$1] }) }
        return b2.indices.map { k in Double(b2[k]) + hidden.indices.reduce(0) { $0 + Double(w2[k * hidden.count + $1]) * hidden[$1] } }
    }

    func gray(_ pixels: [UInt8], columns: Int) -> [[UInt8]] {
        stride(from: 0, to: pixels.count, by: columns).map { start in pixels[start..<(start + columns)].flatMap { [$0, $0, $0] } }
    }

    // MARK: D1 outputs that are not finite

    /// A copy of `t`'s model file changed by `edit`, written as `name` beside its data; returns the path.
    func editedModel(_ t: Trained, _ name: String, _ edit: (inout TensorFile) throws -> Void) throws -> String {
        var file = try TensorFile(path: t.model)
        try edit(&file)
        let path = t.data + "/" + name
        try file.write(to: path)
        return path
    }

    /// The trained model with fc1 giving 2 on every hidden unit and one fc2 weight of 3e38: finite
    /// parameters whose product overflows float32 for every input.
    func overflowingModel(_ t: Trained) throws -> String {
        try editedModel(t, "overflow.safetensors") { file in
            try file.set("fc1.weight", [Float](repeating: 0, count: try file.values("fc1.weight").count))
            try file.set("fc1.bias", [Float](repeating: 2, count: try file.values("fc1.bias").count))
            var w2 = try file.values("fc2.weight")
            w2[0] = 3e38
            try file.set("fc2.weight", w2)
        }
    }

    func testPredictOfAModelWhoseOutputsOverflowFailsNamingTheFile() throws {
        let t = try crossEntropyRun()
        let model = try overflowingModel(t)
        let png = t.data + "/digit.png"
        try writeFile(png, bytes: ArtifactCLI.png(width: 6, height: 6, rgbRows: gray(try testImage(0, in: t.data), columns: 6)))
        for arguments in [["--index", "0"], [png]] {
            let result = try MLPCProcess.run(["predict", model] + arguments)
            assertNoCrash(result)
            XCTAssertEqual(result.status, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains("\(model): its outputs for "), result.stderr)
            XCTAssertTrue(result.stderr.contains("are not finite"), result.stderr)
            XCTAssertEqual(result.stdout, "")
        }
    }

    func testEvalOfAModelWhoseOutputsOverflowFailsNamingTheFile() throws {
        let t = try crossEntropyRun()
        let model = try overflowingModel(t)
        let result = try MLPCProcess.run(["eval", model])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("\(model): its outputs for test image 0 of "), result.stderr)
        XCTAssertFalse(result.stdout.contains("Accuracy"), result.stdout)
    }

    // MARK: D2 flat inputs

    func testPNGOfATestImageMatchesIndexForAFlatSquareInput() throws {
        let t = try flatRun()
        for index in [3, 4, 5] {
            let png = t.data + "/test\(index).png"
            try writeFile(png, bytes: ArtifactCLI.png(width: 6, height: 6, rgbRows: gray(try testImage(index, in: t.data), columns: 6)))
            let result = try MLPCProcess.run(["predict", t.model, png, "--index", String(index), "--invert", "never"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let fromPNG = try printedValues(result.stdout, after: png + ": ")
            let fromIndex = try printedValues(result.stdout, after: "test image \(index): ")
            XCTAssertEqual(fromPNG.count, 3, result.stdout)
            XCTAssertEqual(fromPNG, fromIndex, result.stdout)
            let classFromPNG = result.stdout.components(separatedBy: "\n").first { $0.hasPrefix(png) }?.split(separator: " ").last
            let classFromIndex = result.stdout.components(separatedBy: "\n").first { $0.hasPrefix("test image") }?.split(separator: " ")[3]
            XCTAssertEqual(classFromPNG, classFromIndex, result.stdout)
        }
    }

    func testPNGIsRefusedForAFlatInputThatIsNotASquare() throws {
        // 5 x 7 images flattened to 35 features: no square picture fits them.
        let t = try trained(
            "flat35", spec: Self.spec(inputShape: "[35]", layers: ["linear: {out: 8, activation: relu}", "linear: {out: 2}"]),
            dataset: { directory in
                func file(_ count: Int) -> ([UInt8], [UInt8]) {
                    let labels = (0..<count).map { UInt8($0 % 2) }
                    let images = labels.flatMap { label in (0..<35).map { UInt8(truncatingIfNeeded: $0 * 7 + Int(label) * 120) } }
                    return ([0, 0, 8, 3] + TinyDataset.bigEndian(count) + TinyDataset.bigEndian(5) + TinyDataset.bigEndian(7) + images,
                            TinyDataset.labelsFile(labels))
                }
                for (images, labels, count) in [(TinyDataset.trainImages, TinyDataset.trainLabels, 40), (TinyDataset.testImages, TinyDataset.testLabels, 10)] {
                    let (imageBytes, labelBytes) = file(count)
                    try writeFile(directory + "/" + images, bytes: imageBytes)
                    try writeFile(directory + "/" + labels, bytes: labelBytes)
                }
            })
        let png = t.data + "/any.png"
        try writeFile(png, bytes: ArtifactCLI.png(width: 7, height: 5, rgbRows: gray([UInt8](repeating: 90, count: 35), columns: 7)))
        let refused = try MLPCProcess.run(["predict", t.model, png])
        assertNoCrash(refused)
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains(t.model), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("input shape [35]"), refused.stderr)
        let indexed = try MLPCProcess.run(["predict", t.model, "--index", "1"])
        XCTAssertEqual(indexed.status, 0, indexed.stderr)
        XCTAssertTrue(indexed.stdout.hasPrefix("test image 1: "), indexed.stdout)
    }

    // MARK: D3 what predict prints

    func testPredictOfAnMSEModelPrintsItsOutputsNotProbabilities() throws {
        let t = try trained(
            "mse", spec: Self.spec(inputShape: "[1, 6, 6]", layers: ["flatten", "linear: {out: 16, activation: relu}", "linear: {out: 3}"], loss: "mse", normalize: false))
        let result = try MLPCProcess.run(["predict", t.model, "--index", "0", "--index", "4"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let file = try TensorFile(path: t.model)
        for index in [0, 4] {
            let title = "test image \(index): "
            let line = try XCTUnwrap(result.stdout.components(separatedBy: "\n").first { $0.hasPrefix(title) })
            XCTAssertTrue(line.hasSuffix("(outputs, not probabilities)"), line)
            let expected = try outputs(of: file, pixels: try testImage(index, in: t.data), mean: 0, std: 1)
            let printed = try printedValues(result.stdout, after: title)
            XCTAssertEqual(printed.count, 3)
            for (p, e) in zip(printed, expected) { XCTAssertEqual(p, e, accuracy: 2e-4, result.stdout) }
        }
        // Bars are drawn from the output clamped to [0, 1].
        for row in result.stdout.components(separatedBy: "\n") where row.hasPrefix("  ") {
            let parts = row.split(separator: " ", omittingEmptySubsequences: true)
            let value = try XCTUnwrap(Double(parts[1]))
            XCTAssertEqual(row.filter { $0 == "#" }.count, Int((min(max(value, 0), 1) * 40).rounded()), row)
        }
    }

    /// An output far from [0, 1] is printed in scientific notation, not as dozens of digits.
    func testPredictPrintsAHugeOutputInScientificNotation() throws {
        let t = try trained(
            "mse", spec: Self.spec(inputShape: "[1, 6, 6]", layers: ["flatten", "linear: {out: 16, activation: relu}", "linear: {out: 3}"], loss: "mse", normalize: false))
        let path = try editedModel(t, "huge-output.safetensors") { try $0.set("fc2.bias", [2.5e7, 0, 0]) }
        let result = try MLPCProcess.run(["predict", path, "--index", "0"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let row = try XCTUnwrap(result.stdout.components(separatedBy: "\n").first { $0.hasPrefix("   0: ") }, result.stdout)
        XCTAssertTrue(row.hasPrefix("   0: 2.5000e+07 "), row)
        XCTAssertEqual(row.filter { $0 == "#" }.count, 40, row)
    }

    func testPredictOfACrossEntropyModelPrintsTheSoftmaxOfItsOutputs() throws {
        let t = try crossEntropyRun()
        let result = try MLPCProcess.run(["predict", t.model, "--index", "2"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.hasPrefix("test image 2: 2 (true: 2)\n"), result.stdout)
        let logits = try outputs(of: try TensorFile(path: t.model), pixels: try testImage(2, in: t.data), mean: 0.5, std: 0.5)
        let top = logits.max() ?? 0
        let exps = logits.map { exp($0 - top) }
        let printed = try printedValues(result.stdout, after: "test image 2: ")
        for (p, e) in zip(printed, exps.map { $0 / exps.reduce(0, +) }) { XCTAssertEqual(p, e, accuracy: 2e-4, result.stdout) }
    }

    // MARK: D6 the embedded spec

    /// The trained model with its embedded spec replaced by `edit(spec)` (digest dropped, so it loads).
    func modelWithEmbeddedSpec(_ t: Trained, name: String, _ edit: (String) -> String) throws -> (path: String, spec: String) {
        var spec = ""
        let path = try editedModel(t, name) { file in
            spec = edit(try XCTUnwrap(file.metadata["spec"]))
            file.metadata["spec"] = spec
            file.metadata["spec_sha256"] = nil
        }
        return (path, spec)
    }

    func testShapeMismatchWithTheEmbeddedSpecNamesTheModelFile() throws {
        let t = try crossEntropyRun()
        let (path, spec) = try modelWithEmbeddedSpec(t, name: "resized.safetensors") { $0.replacingOccurrences(of: "out: 16", with: "out: 12") }
        let line = try XCTUnwrap(TinyDataset.line(of: "out: 12", in: spec))
        let result = try MLPCProcess.run(["eval", path])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(
            result.stderr.contains("fc1.weight: the file has [16, 36], \(path) (its embedded spec, from \(t.spec)):\(line) says [12, 36]"),
            result.stderr)
        XCTAssertFalse(result.stderr.contains("\(t.spec):\(line)"), "points at a line of the spec file: \(result.stderr)")
    }

    func testEmbeddedSpecThatDoesNotLoadIsReportedAgainstTheModelFile() throws {
        let t = try crossEntropyRun()
        let (path, spec) = try modelWithEmbeddedSpec(t, name: "badloss.safetensors") {
            $0.replacingOccurrences(of: "cross_entropy", with: "cross_entropi")
        }
        let line = try XCTUnwrap(TinyDataset.line(of: "cross_entropi", in: spec))
        let result = try MLPCProcess.run(["eval", path])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("\(path) (its embedded spec, from \(t.spec)):\(line):"), result.stderr)
        XCTAssertFalse(result.stderr.contains("\(t.spec):\(line)"), result.stderr)
    }

    // MARK: D7 text from files is escaped

    func testTensorNamesFromTheFileAreEscapedInMessages() throws {
        let t = try crossEntropyRun()
        let path = try editedModel(t, "escape.safetensors") { file in
            let index = try XCTUnwrap(file.tensors.firstIndex { $0.name == "fc1.bias" })
            file.tensors[index].name = "\u{1B}[2J\u{1B}[31mfc1.bias\u{0}"
        }
        let result = try MLPCProcess.run(["eval", path])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertFalse(result.stderr.contains("\u{1B}"), result.stderr)
        XCTAssertFalse(result.stderr.contains("\u{0}"), result.stderr)
        XCTAssertTrue(result.stderr.contains("\\u{1B}[2J\\u{1B}[31mfc1.bias\\u{0} [16] is not a parameter of the model"), result.stderr)
    }

    func testMetadataValuesFromTheFileAreEscapedInMessages() throws {
        let t = try crossEntropyRun()
        let path = try editedModel(t, "evilformat.safetensors") { $0.metadata["format"] = "evil\u{1B}]0;title\u{7}\r" }
        let result = try MLPCProcess.run(["eval", path])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("format \"evil\\u{1B}]0;title\\u{7}\\r\""), result.stderr)
        XCTAssertFalse(result.stderr.contains("\u{1B}") || result.stderr.contains("\u{7}") || result.stderr.contains("\r"), result.stderr)
    }

    // MARK: D9 and D10 paths that are not usable files

    func testPredictOfADeviceOrAFIFOSaysItIsNotARegularFile() throws {
        let t = try crossEntropyRun()
        let fifo = t.data + "/pipe.png"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        defer { unlink(fifo) }
        for path in ["/dev/zero", "/dev/null", fifo] {
            let result = try MLPCProcess.run(["predict", t.model, path], timeout: 20)
            assertNoCrash(result)
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertTrue(result.stderr.contains("\(path): is not a regular file"), result.stderr)
        }
        let result = try MLPCProcess.run(["eval", fifo], timeout: 20)
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("\(fifo): is not a regular file but a FIFO"), result.stderr)
    }

    func testPredictOfADirectorySaysItIsADirectory() throws {
        let t = try crossEntropyRun()
        let result = try MLPCProcess.run(["predict", t.model, t.run])
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("\(t.run): is a directory, not a PNG image"), result.stderr)
    }

    func testShowOfAFileSaysItIsNotADirectory() throws {
        let t = try crossEntropyRun()
        let result = try MLPCProcess.run(["show", t.run + "/run.json", "--index", "0"])
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("\(t.run)/run.json is not a directory"), result.stderr)
    }

    func testEvalOfACheckpointSaysToUseTheModelFile() throws {
        let t = try crossEntropyRun()
        let result = try MLPCProcess.run(["eval", t.run + "/checkpoint.safetensors"])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("\(t.run)/checkpoint.safetensors: is a training checkpoint"), result.stderr)
        XCTAssertTrue(result.stderr.contains("model.safetensors"), result.stderr)
    }

    func testPathsThatDoNotExistExitWithStatus2() throws {
        let t = try crossEntropyRun()
        let missing = t.data + "/missing"
        for arguments in [
            ["eval", missing + ".safetensors"], ["predict", t.model, missing + ".png"], ["show", missing, "--index", "0"],
            ["eval", t.model, "--spec", missing + ".yaml"], ["eval", t.model, "--data-dir", missing],
        ] {
            let result = try MLPCProcess.run(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(missing), result.stderr)
        }
    }

    func testFilesWithBadContentStillExitWithStatus1() throws {
        let t = try crossEntropyRun()
        let broken = t.data + "/broken.png"
        try writeFile(broken, "not a picture")
        var result = try MLPCProcess.run(["predict", t.model, broken])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains(broken), result.stderr)
        result = try MLPCProcess.run(["eval", t.spec])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("\(t.spec): not a usable model file"), result.stderr)
    }

    // MARK: D11 a class without test images

    func testEvalOfATestSetWithoutSomeClassSaysNoTestImages() throws {
        let t = try crossEntropyRun()
        let data = t.data + "/two-classes"
        try TinyDataset.write(to: data)
        // Keep the test images of classes 0 and 1 only.
        var noise: UInt64 = 5
        let labels = (0..<20).map { UInt8($0 % 2) }
        try writeFile(data + "/" + TinyDataset.testImages, bytes: TinyDataset.imagesFile(labels.map { TinyDataset.image(label: Int($0), noise: &noise) }))
        try writeFile(data + "/" + TinyDataset.testLabels, bytes: TinyDataset.labelsFile(labels))
        let result = try MLPCProcess.run(["eval", t.run, "--data-dir", data])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.components(separatedBy: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("   2:") && $0.contains("no test images") }, result.stdout)
        XCTAssertFalse(result.stdout.contains("(0/0)"), result.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("   0:") && $0.hasSuffix("/10)") }, result.stdout)
    }

    // MARK: D13 file formats

    func testModelFileOfAnotherFormatIsRefused() throws {
        let t = try crossEntropyRun()
        let path = try editedModel(t, "something.safetensors") { $0.metadata["format"] = "something" }
        let result = try MLPCProcess.run(["eval", path])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("\(path): its metadata says format \"something\", not \"mlpc.model\""), result.stderr)
        XCTAssertEqual(result.stdout, "")
    }

    func testStateDictWithoutMetadataLoadsWithASpec() throws {
        let t = try crossEntropyRun()
        let path = try editedModel(t, "state_dict.safetensors") { $0.metadata = [:] }
        let result = try MLPCProcess.run(["eval", path, "--spec", t.spec, "--data-dir", t.data])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.hasPrefix("Accuracy: "), result.stdout)
    }

    /// A spec given with --spec is read as `mlpc check` reads it: bytes that are not UTF-8 are an error
    /// in that file, not decoded lossily, and the model file is not blamed.
    func testASpecGivenWithSpecThatIsNotUTF8IsReportedAgainstItself() throws {
        let t = try crossEntropyRun()
        let spec = t.data + "/latin1.yaml"
        let text = try String(contentsOfFile: t.spec, encoding: .utf8)
        try writeFile(spec, bytes: Array("# mod".utf8) + [0xE8] + Array("le\n".utf8) + Array(text.utf8))
        for command in ["eval", "predict"] {
            let arguments = [command, t.model, "--spec", spec, "--data-dir", t.data] + (command == "predict" ? ["--index", "0"] : [])
            let result = try MLPCProcess.run(arguments)
            assertNoCrash(result)
            XCTAssertEqual(result.status, 1, "\(command): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("\(spec): the spec does not load"), result.stderr)
            XCTAssertTrue(result.stderr.contains("[E0101]"), result.stderr)
            XCTAssertFalse(result.stderr.contains(t.model), result.stderr)
        }
    }

    func testPalettePNGWithAnIndexPastItsPaletteIsRefused() throws {
        let t = try crossEntropyRun()
        // 2x1, 8-bit palette of two colours; the second pixel uses index 5.
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            var c: UInt32 = 0xFFFF_FFFF
            for byte in body {
                c ^= UInt32(byte)
                for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            }
            return TinyDataset.bigEndian(data.count) + body + TinyDataset.bigEndian(Int(c ^ 0xFFFF_FFFF))
        }
        let raw: [UInt8] = [0, 1, 5]
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        let zlib: [UInt8] = [0x78, 0x01, 1, 3, 0, 0xFC, 0xFF] + raw + TinyDataset.bigEndian(Int(b << 16 | a))
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", TinyDataset.bigEndian(2) + TinyDataset.bigEndian(1) + [8, 3, 0, 0, 0])
            + chunk("PLTE", [0, 0, 0, 255, 255, 255]) + chunk("IDAT", zlib) + chunk("IEND", [])
        let path = t.data + "/palette.png"
        try writeFile(path, bytes: png)
        let result = try MLPCProcess.run(["predict", t.model, path])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("\(path): pixel (1, 0) uses palette index 5 but the PLTE chunk holds 2 colours"), result.stderr)
    }
}
