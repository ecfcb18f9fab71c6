import Files
import Planner
import SpecParser
import TestSupport
import XCTest

@testable import ONNXExport
@testable import ONNXProto

/// The ONNX graph built for small specs, read back as protobuf: its versions, input and outputs,
/// nodes, initializers and metadata. (The end-to-end tests in mlpcTests run exported models in ONNX
/// Runtime and compare them with `mlpc predict`.)
final class ONNXModelTests: XCTestCase {
    static func specText(layers: String, inputShape: String = "[1, 4, 4]", loss: String = "cross_entropy") -> String {
        """
        name: tiny_onnx
        data:
          dir: unused
          normalize: {mean: 0.25, std: 0.5}
        model:
          input_shape: \(inputShape)
          layers:
        \(layers)
        loss: \(loss)
        optimizer: {kind: adam}
        training: {batch_size: 8, epochs: 1}
        """
    }

    static func planned(_ text: String) throws -> (Spec, Plan) {
        let loaded = SpecLoader.parse(bytes: Array(text.utf8), path: "tiny.yaml")
        guard let spec = loaded.spec, !loaded.diagnostics.hasErrors else { throw FixtureFailure("spec did not load: \(loaded.diagnostics)") }
        let (plan, diagnostics) = makePlan(spec, target: .reference)
        guard let plan, !diagnostics.hasErrors else { throw FixtureFailure("spec did not plan: \(diagnostics)") }
        return (spec, plan)
    }

    /// Distinct values per tensor, so a swapped or transposed tensor shows.
    static func tensors(for plan: Plan) -> [String: TensorValues] {
        var tensors: [String: TensorValues] = [:]
        for (t, tensor) in plan.parameters.enumerated() {
            tensors[tensor.name] = TensorValues(shape: tensor.shape, values: (0..<tensor.count).map { Float(t) + Float($0) / 1024 })
        }
        return tensors
    }

    static func export(_ text: String) throws -> (Spec, Plan, Onnx_ModelProto) {
        let (spec, plan) = try planned(text)
        let model = try makeONNXModel(spec: spec, plan: plan, tensors: tensors(for: plan), mlpcVersion: "test")
        // What is checked is what a reader decodes from the bytes.
        let bytes: [UInt8] = try model.serializedBytes()
        return (spec, plan, try Onnx_ModelProto(serializedBytes: bytes))
    }

    static let mlp = "    - flatten\n    - linear: {out: 5, activation: relu}\n    - dropout: {p: 0.5}\n    - linear: {out: 3}"

    func testVersionsInputOutputsAndSymbolicBatch() throws {
        let (_, _, model) = try Self.export(Self.specText(layers: Self.mlp))
        XCTAssertEqual(model.irVersion, 8)
        XCTAssertEqual(model.opsetImport.map(\.version), [17])
        XCTAssertEqual(model.opsetImport.map(\.domain), [""])
        XCTAssertEqual(model.producerName, "mlpc")
        XCTAssertEqual(model.graph.input.map(\.name), ["pixels"], "initializers are not graph inputs")
        XCTAssertEqual(model.graph.output.map(\.name), ["logits", "probabilities"])
        func dims(_ info: Onnx_ValueInfoProto) -> [String] {
            info.type.tensorType.shape.dim.map { $0.dimParam.isEmpty ? String($0.dimValue) : $0.dimParam }
        }
        XCTAssertEqual(dims(model.graph.input[0]), ["batch", "1", "4", "4"])
        XCTAssertEqual(model.graph.output.map(dims), [["batch", "3"], ["batch", "3"]])
        XCTAssertEqual(model.graph.input[0].type.tensorType.elemType, Int32(Onnx_TensorProto.DataType.float.rawValue))
        XCTAssertEqual(describeONNXInterface(model), "input float32 'pixels' [batch, 1, 4, 4], outputs 'logits' [batch, 3] and 'probabilities' [batch, 3]")
    }

    func testNodesNormalizeThenFollowTheLayersWithoutDropout() throws {
        let (_, _, model) = try Self.export(Self.specText(layers: Self.mlp))
        XCTAssertEqual(model.graph.node.map(\.opType), ["Mul", "Add", "Flatten", "Gemm", "Relu", "Gemm", "Softmax"])
        XCTAssertFalse(model.graph.node.contains { $0.opType == "Dropout" })
        let gemms = model.graph.node.filter { $0.opType == "Gemm" }
        XCTAssertEqual(gemms[0].input, ["flatten1.out", "fc1.weight", "fc1.bias"])
        XCTAssertEqual(gemms[1].input, ["fc1.out", "fc2.weight", "fc2.bias"], "dropout adds no node: fc2 reads fc1's output")
        XCTAssertEqual(gemms[1].output, ["logits"])
        for gemm in gemms { XCTAssertEqual(gemm.attribute.map { "\($0.name)=\($0.i)" }, ["transB=1"]) }
        let softmax = try XCTUnwrap(model.graph.node.last)
        XCTAssertEqual(softmax.input, ["logits"])
        XCTAssertEqual(softmax.output, ["probabilities"])
        XCTAssertEqual(softmax.attribute.map { "\($0.name)=\($0.i)" }, ["axis=1"])
        // Every node's output is a distinct value, and every input was defined before it.
        var defined = Set(["pixels"] + model.graph.initializer.map(\.name))
        for node in model.graph.node {
            for input in node.input { XCTAssertTrue(defined.contains(input), "\(node.name) reads \(input) before it exists") }
            for output in node.output { XCTAssertTrue(defined.insert(output).inserted, "\(output) is written twice") }
        }
    }

    /// The graph normalizes x * scale + shift with the plan's own float32 constants.
    func testNormalizationUsesThePlansConstants() throws {
        let (_, plan, model) = try Self.export(Self.specText(layers: Self.mlp))
        let normalization = PixelNormalization(mean: 0.25, standardDeviation: 0.5)
        let initializers = Dictionary(uniqueKeysWithValues: model.graph.initializer.map { ($0.name, $0) })
        let mul = model.graph.node[0], add = model.graph.node[1]
        XCTAssertEqual(mul.input[0], "pixels")
        XCTAssertEqual(add.input[0], mul.output[0])
        XCTAssertEqual(try floats(XCTUnwrap(initializers[mul.input[1]])), [normalization.scale])
        XCTAssertEqual(try floats(XCTUnwrap(initializers[add.input[1]])), [normalization.shift])
        XCTAssertEqual(plan.classes, 3)
    }

    func testInitializersHoldThePyTorchLayoutBitForBit() throws {
        let (_, plan, model) = try Self.export(Self.specText(layers: Self.mlp))
        let expected = Self.tensors(for: plan)
        for tensor in plan.parameters {
            let found = try XCTUnwrap(model.graph.initializer.first { $0.name == tensor.name }, tensor.name)
            XCTAssertEqual(found.dims, tensor.shape.map(Int64.init), tensor.name)
            XCTAssertEqual(found.dataType, Int32(Onnx_TensorProto.DataType.float.rawValue))
            XCTAssertEqual(floats(found).map(\.bitPattern), expected[tensor.name]?.values.map(\.bitPattern), tensor.name)
        }
    }

    func testEveryActivationAndALinearWithoutBias() throws {
        let layers = """
                - flatten
                - linear: {out: 6, activation: leaky_relu, bias: false}
                - sigmoid
                - linear: {out: 6, activation: tanh}
                - dropout: {p: 0.1}
                - gelu
                - linear: {out: 6}
                - gelu: {approximate: tanh}
                - relu
                - linear: {out: 3}
            """
        let (_, _, model) = try Self.export(Self.specText(layers: layers))
        XCTAssertEqual(
            model.graph.node.map(\.opType),
            [
                "Mul", "Add", "Flatten", "Gemm", "LeakyRelu", "Sigmoid", "Gemm", "Tanh",
                "Mul", "Erf", "Add", "Mul", "Mul",  // gelu (erf)
                "Gemm", "Mul", "Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul",  // fused gelu (tanh)
                "Relu", "Gemm", "Softmax",
            ])
        let first = try XCTUnwrap(model.graph.node.first { $0.opType == "Gemm" })
        XCTAssertEqual(first.input.count, 2, "a linear without bias has no C input")
        XCTAssertFalse(model.graph.initializer.contains { $0.name == "fc1.bias" })
        let leaky = try XCTUnwrap(model.graph.node.first { $0.opType == "LeakyRelu" })
        XCTAssertEqual(leaky.attribute.map(\.name), ["alpha"])
        XCTAssertEqual(leaky.attribute[0].f, 0.01)
    }

    func testPoolingOptionsExportWithTheirAttributesAndUnequalAdaptiveWindowsAreRefused() throws {
        let layers = """
                - max_pool2d: {kernel: 2, stride: 1, dilation: 2}
                - avg_pool2d: {kernel: 3, padding: 1, ceil_mode: true, count_include_pad: false}
                - adaptive_avg_pool2d: [1, 3]
                - flatten
                - linear: {out: 3}
            """
        let (_, _, model) = try Self.export(Self.specText(layers: layers, inputShape: "[1, 8, 8]"))
        let pools = model.graph.node.filter { $0.opType.hasSuffix("Pool") }
        XCTAssertEqual(pools.map(\.opType), ["MaxPool", "AveragePool", "AveragePool"])
        func ints(_ node: Onnx_NodeProto, _ name: String) -> [Int64]? { node.attribute.first { $0.name == name }?.ints }
        // [1, 8, 8] -> dilated 2x2 (a 3-wide window) [1, 6, 6] -> 3x3 /3 pad 1 ceil [1, 3, 3] -> [1, 1, 3].
        XCTAssertEqual(ints(pools[0], "dilations"), [2, 2])
        XCTAssertEqual(ints(pools[0], "pads"), [0, 0, 0, 0])
        XCTAssertEqual(ints(pools[1], "pads"), [1, 1, 2, 2], "the spec's padding and ceil_mode's reach past the input")
        XCTAssertEqual(pools[1].attribute.first { $0.name == "count_include_pad" }?.i, 0)
        XCTAssertFalse(model.graph.node.contains { $0.opType == "Pad" }, "the pool pads and counts only the input")
        XCTAssertEqual(ints(pools[2], "kernel_shape"), [3, 1])
        XCTAssertEqual(ints(pools[2], "strides"), [3, 1])

        let (spec, plan) = try Self.planned(Self.specText(layers: "    - adaptive_avg_pool2d: 2\n    - flatten\n    - linear: {out: 3}", inputShape: "[1, 5, 5]"))
        XCTAssertThrowsError(try makeONNXModel(spec: spec, plan: plan, tensors: Self.tensors(for: plan), mlpcVersion: "test")) { error in
            XCTAssertTrue("\(error)".contains("adaptive_avg_pool2d layer 'global_pool1'"), "\(error)")
            XCTAssertTrue("\(error)".contains("output size 2 does not divide its input 5x5"), "\(error)")
        }
    }

    func testLayerOutputShapesAreDeclared() throws {
        let (_, _, model) = try Self.export(Self.specText(layers: Self.mlp))
        let shapes = Dictionary(
            uniqueKeysWithValues: model.graph.valueInfo.map { ($0.name, $0.type.tensorType.shape.dim.map { $0.dimParam.isEmpty ? "\($0.dimValue)" : $0.dimParam }) })
        XCTAssertEqual(shapes["flatten1.out"], ["batch", "16"])
        XCTAssertEqual(shapes["fc1.out"], ["batch", "5"])
        XCTAssertNil(shapes["logits"], "graph outputs are declared as outputs, not value_info")
    }

    func testDocStringAndMetadataNameTheInputAndHoldTheSpec() throws {
        let (spec, _, model) = try Self.export(Self.specText(layers: Self.mlp))
        let metadata = Dictionary(uniqueKeysWithValues: model.metadataProps.map { ($0.key, $0.value) })
        XCTAssertEqual(metadata["input_name"], "pixels")
        XCTAssertEqual(metadata["input_shape"], "[batch, 1, 4, 4]")
        XCTAssertTrue(metadata["input_meaning"]?.contains("0 (black) to 255 (white)") == true, metadata["input_meaning"] ?? "")
        XCTAssertEqual(metadata["spec"], spec.resolvedYAML)
        XCTAssertEqual(metadata["spec_sha256"], SHA256.hash(Array(spec.resolvedYAML.utf8)).hex)
        XCTAssertEqual(metadata["loss"], "cross_entropy")
        XCTAssertEqual(metadata["classes"], "3")
        XCTAssertEqual(metadata["normalize_mean"], "0.25")
        XCTAssertTrue(model.docString.contains("Input 'pixels': float32 [batch, 1, 4, 4]"), model.docString)
        XCTAssertTrue(model.docString.contains("Output 'logits'"), model.docString)
        XCTAssertTrue(model.docString.contains("Output 'probabilities'"), model.docString)
    }

    func testMSEModelSaysItsOutputsAreNotProbabilities() throws {
        let (_, _, model) = try Self.export(Self.specText(layers: Self.mlp, loss: "mse"))
        let metadata = Dictionary(uniqueKeysWithValues: model.metadataProps.map { ($0.key, $0.value) })
        XCTAssertEqual(metadata["loss"], "mse")
        XCTAssertTrue(metadata["output_probabilities"]?.contains("not trained as probabilities") == true)
    }

    func testAFlatInputNeedsNoFlattenAndADropoutLastStillEndsInLogits() throws {
        let (_, _, model) = try Self.export(Self.specText(layers: "    - linear: {out: 3}\n    - dropout: {p: 0.2}", inputShape: "[7]"))
        XCTAssertEqual(model.graph.node.map(\.opType), ["Mul", "Add", "Gemm", "Softmax"])
        XCTAssertEqual(model.graph.node[2].output, ["logits"])
    }

    func testAMissingOrMisshapenTensorIsAnError() throws {
        let (spec, plan) = try Self.planned(Self.specText(layers: Self.mlp))
        var tensors = Self.tensors(for: plan)
        tensors["fc2.weight"] = nil
        XCTAssertThrowsError(try makeONNXModel(spec: spec, plan: plan, tensors: tensors, mlpcVersion: "test")) { error in
            XCTAssertTrue("\(error)".contains("fc2.weight"), "\(error)")
        }
        tensors = Self.tensors(for: plan)
        tensors["fc1.bias"] = TensorValues(shape: [4], values: [0, 0, 0, 0])
        XCTAssertThrowsError(try makeONNXModel(spec: spec, plan: plan, tensors: tensors, mlpcVersion: "test"))
    }

    func floats(_ tensor: Onnx_TensorProto) -> [Float] {
        let bytes = [UInt8](tensor.rawData)
        return stride(from: 0, to: bytes.count, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }
}
