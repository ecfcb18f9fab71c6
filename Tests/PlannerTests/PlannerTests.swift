import KernelInterface
import SpecParser
import XCTest

@testable import Planner

final class ReferencePlanTests: XCTestCase {
    func plan(_ spec: Spec, target: Target = .reference) throws -> Plan {
        let (plan, diagnostics) = makePlan(spec, target: target)
        XCTAssertFalse(diagnostics.hasErrors, "\(diagnostics)")
        return try XCTUnwrap(plan)
    }

    func testReferenceModelHas109386Parameters() throws {
        let plan = try plan(SpecFixtures.reference)
        XCTAssertEqual(plan.parameterCount, 109_386)
        XCTAssertEqual(plan.parameters.map(\.name), ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"])
        XCTAssertEqual(plan.parameters.map(\.shape), [[128, 784], [128], [64, 128], [64], [10, 64], [10]])
        XCTAssertEqual(plan.layers.map(\.outputShape), [[784], [128], [64], [10]])
    }

    func testReferenceTrainingStepKernelsInOrder() throws {
        let plan = try plan(SpecFixtures.reference)
        XCTAssertEqual(
            plan.trainKernels.map(\.label),
            [
                "gather_batch", "fc1.linear+bias+relu", "fc2.linear+bias+relu", "fc3.linear", "softmax_cross_entropy+grad",
                "fc3.grad_weight+bias", "fc3.grad_input*relu'", "fc2.grad_weight+bias", "fc2.grad_input*relu'",
                "fc1.grad_weight+bias", "adam_step",
            ])
        XCTAssertEqual(plan.evalKernels.map(\.label), ["gather_batch", "fc1.linear+bias+relu", "fc2.linear+bias+relu", "fc3.linear", "argmax"])
    }

    func testReferenceFlopsPerStepMatchTheMatrixProducts() throws {
        let plan = try plan(SpecFixtures.reference)
        // 454,400 FLOP of matrix products per image (shared/bench/README.md), times 64 rows.
        let matmulFlops = plan.trainKernels.compactMap(\.matmul).reduce(0) { $0 + $1.flops }
        XCTAssertEqual(matmulFlops, 454_400 * 64)
    }

    func testReferenceArenaIsSmallerThanUnsharedBuffers() throws {
        let plan = try plan(SpecFixtures.reference)
        let report = MemoryReport(plan)
        // Weights in panels of 32 output features (fc3's 10 take a whole panel, 32 x 64), biases padded
        // to 16 floats: 100,352 + 128 + 8,192 + 64 + 2,048 + 16.
        XCTAssertEqual(report.parameterBytes, 110_800 * 4)
        XCTAssertEqual(report.gradientBytes, report.parameterBytes)
        XCTAssertEqual(report.optimizerStateBytes, 2 * report.parameterBytes)
        XCTAssertLessThan(report.activationBytes, report.activationBytesUnshared)
        XCTAssertEqual(plan.arenaBytes % 64, 0)
        XCTAssertEqual(verify(plan), [])
    }

    func testTrainingBuffersAreReusedByEvaluation() throws {
        let plan = try plan(SpecFixtures.reference)
        let evalInput = try XCTUnwrap(plan.buffer(named: "eval.input"))
        let trainBuffers = plan.buffers.filter { !isPersistent($0.role) && !$0.name.hasPrefix("eval.") }
        let shares = trainBuffers.contains { b in b.offset < evalInput.offset + evalInput.bytes && evalInput.offset < b.offset + b.bytes }
        XCTAssertTrue(shares, "the evaluation input should reuse training activation bytes")
    }

    func testParametersGradientsAndMomentsAreContiguousBlocks() throws {
        let plan = try plan(SpecFixtures.reference)
        guard case .optimizerStep(let step)? = plan.trainKernels.last else {
            return XCTFail("the last training kernel is not the optimizer")
        }
        XCTAssertEqual(step.parameters.elements, plan.parameterBlockFloats)
        XCTAssertEqual(step.gradients.elements, plan.parameterBlockFloats)
        XCTAssertEqual(step.state.map(\.elements), [plan.parameterBlockFloats, plan.parameterBlockFloats])
        XCTAssertEqual(plan.buffer(named: "parameters")?.offset, 0)
    }
}

final class FusionTests: XCTestCase {
    func testStandaloneActivationAfterLinearIsFused() throws {
        let spec = SpecFixtures.spec(layers: [
            SpecFixtures.flatten(), SpecFixtures.linear("fc1", 32), SpecFixtures.activation("relu1", .relu),
            SpecFixtures.linear("fc2", 10),
        ])
        let plan = try XCTUnwrap(makePlan(spec, target: .reference).plan)
        XCTAssertTrue(plan.trainKernels.map(\.label).contains("fc1.linear+bias+relu"))
        XCTAssertFalse(plan.trainKernels.map(\.label).contains("relu1.relu"))
        XCTAssertTrue(plan.fusions.contains { $0.hasPrefix("relu1 fused into fc1") })
        XCTAssertEqual(plan.layers.map(\.name), ["flatten1", "fc1", "relu1", "fc2"])
    }

    func testActivationAfterDropoutIsNotFusedAndGetsItsOwnBackward() throws {
        let spec = SpecFixtures.spec(layers: [
            SpecFixtures.flatten(), SpecFixtures.linear("fc1", 32, .tanh), SpecFixtures.dropout("dropout1", 0.5),
            SpecFixtures.linear("fc2", 10),
        ])
        let plan = try XCTUnwrap(makePlan(spec, target: .reference).plan)
        let labels = plan.trainKernels.map(\.label)
        XCTAssertEqual(
            labels,
            [
                "gather_batch", "fc1.linear+bias+tanh", "dropout1.dropout", "fc2.linear", "softmax_cross_entropy+grad",
                "fc2.grad_weight+bias", "fc2.grad_input", "dropout1.dropout_backward", "fc1.tanh_backward", "fc1.grad_weight+bias",
                "adam_step",
            ])
        XCTAssertEqual(verify(plan), [])
    }

    func testGeluKeepsItsPreactivationForBackward() throws {
        let spec = SpecFixtures.spec(layers: [
            SpecFixtures.flatten(), SpecFixtures.linear("fc1", 32, .gelu(tanhApproximation: false)), SpecFixtures.linear("fc2", 10),
        ])
        let plan = try XCTUnwrap(makePlan(spec, target: .reference).plan)
        XCTAssertNotNil(plan.buffer(named: "fc1.preact"))
        let backward = plan.trainKernels.first { if case .linearBackwardInput = $0 { return true } else { return false } }
        guard case .linearBackwardInput(let k)? = backward else { return XCTFail() }
        XCTAssertEqual(k.producerActivation.code, .geluErf)
        XCTAssertEqual(k.producerPreactivation?.buffer, "fc1.preact")
    }

    func testFirstLayerComputesNoInputGradient() throws {
        let plan = try XCTUnwrap(makePlan(SpecFixtures.reference, target: .reference).plan)
        XCTAssertFalse(plan.trainKernels.map(\.label).contains { $0.hasPrefix("fc1.grad_input") })
        XCTAssertNil(plan.buffer(named: "d_input"))
    }

    func testBiasFreeLinearHasNoBiasTensorOrGradient() throws {
        let spec = SpecFixtures.spec(layers: [SpecFixtures.flatten(), SpecFixtures.linear("fc1", 10, bias: false)])
        let plan = try XCTUnwrap(makePlan(spec, target: .reference).plan)
        XCTAssertEqual(plan.parameters.map(\.name), ["fc1.weight"])
        XCTAssertTrue(plan.trainKernels.map(\.label).contains("fc1.grad_weight"))
    }

    func testSmallProductsRunOnOneThread() throws {
        let plan = try XCTUnwrap(makePlan(SpecFixtures.reference, target: .reference).plan)
        let threads = Dictionary(uniqueKeysWithValues: plan.trainKernels.compactMap { k in k.matmul.map { (k.label, $0.threads) } })
        XCTAssertEqual(threads["fc1.linear+bias+relu"], 2)
        XCTAssertEqual(threads["fc2.linear+bias+relu"], 2)
        XCTAssertEqual(threads["fc3.linear"], 1)
        XCTAssertEqual(threads["fc3.grad_weight+bias"], 1)
    }

    func testBatchGatherAndOptimizerStepRunOnEveryThread() throws {
        let plan = try XCTUnwrap(makePlan(SpecFixtures.reference, target: .reference).plan)
        XCTAssertEqual(plan.target.threads, 2)
        let threads = plan.trainKernels.map { plan.threads(of: $0) }
        XCTAssertEqual(plan.trainKernels.first?.label, "gather_batch")
        XCTAssertEqual(threads.first, 2, "64 x 784 values are gathered by both threads")
        XCTAssertEqual(threads.last, 2, "109,386 parameters are updated by both threads")
        XCTAssertEqual(plan.threads(of: try XCTUnwrap(plan.trainKernels.first { $0.label == "softmax_cross_entropy+grad" })), 1)
    }
}

final class ShapeDiagnosticTests: XCTestCase {
    func testLinearOnUnflattenedInputIsAnErrorWithAHint() {
        let spec = SpecFixtures.spec(layers: [SpecFixtures.linear("fc1", 10, line: 10)])
        let (plan, diagnostics) = makePlan(spec, target: .reference)
        XCTAssertNil(plan)
        let d = diagnostics.first { $0.code == "E0301" }
        XCTAssertEqual(d?.location?.line, 10)
        XCTAssertEqual(d?.notes.first?.location?.line, 8)
        XCTAssertTrue(d?.suggestion?.contains("flatten") ?? false)
        XCTAssertTrue(d?.message.contains("[1, 28, 28]") ?? false)
    }

    func testCrossEntropyNeedsOneDimensionalOutput() {
        let spec = SpecFixtures.spec(input: [4, 4], layers: [SpecFixtures.activation("relu1", .relu)])
        let codes = makePlan(spec, target: .reference).diagnostics.map(\.code)
        XCTAssertTrue(codes.contains("E0302"))
        XCTAssertTrue(codes.contains("E0304"))
    }

    func testOneClassOutputIsRefused() {
        let spec = SpecFixtures.spec(layers: [SpecFixtures.flatten(), SpecFixtures.linear("fc1", 1)])
        XCTAssertTrue(makePlan(spec, target: .reference).diagnostics.contains { $0.code == "E0303" })
    }

    func testHugeLayerIsRefusedWithoutOverflow() {
        let spec = SpecFixtures.spec(layers: [SpecFixtures.flatten(), SpecFixtures.linear("fc1", Int.max / 2)])
        let (plan, diagnostics) = makePlan(spec, target: .reference)
        XCTAssertNil(plan)
        XCTAssertEqual(diagnostics.map(\.code), ["E0305"])
    }

    /// E0305 names the tensor that is too large: the weight, or a batch of the layer's outputs at the
    /// evaluation batch size (784 x 5,000,000 weights fit; 1000 rows of 5,000,000 outputs do not).
    func testTooLargeLayerNamesTheTensor() {
        let weight = SpecFixtures.spec(layers: [SpecFixtures.flatten(), SpecFixtures.linear("fc1", 6_000_000)])
        XCTAssertEqual(
            makePlan(weight, target: .reference).diagnostics.first?.message,
            "linear layer 'fc1' is too large: its 784 x 6000000 weight exceeds 4294967296 elements")
        let batch = SpecFixtures.spec(layers: [SpecFixtures.flatten(), SpecFixtures.linear("fc1", 5_000_000)])
        XCTAssertEqual(
            makePlan(batch, target: .reference).diagnostics.first?.message,
            "linear layer 'fc1' is too large: a batch of its outputs, 1000 x 5000000 at eval_batch_size 1000, exceeds 4294967296 elements")
    }

    func testSpecNeedingMoreMemoryThanTheMachineIsRefusedWithTheNumbers() {
        var target = Target.reference
        target.memoryBytes = 1 << 20
        let (_, diagnostics) = makePlan(SpecFixtures.reference, target: target)
        let d = diagnostics.first { $0.code == "E0501" }
        XCTAssertNotNil(d)
        XCTAssertTrue(d?.message.contains("1.0 MiB") ?? false, d?.message ?? "")
        XCTAssertTrue(d?.notes.first?.message.contains("parameters 432.8 KiB") ?? false, d?.notes.first?.message ?? "")
    }
}

final class PlanEncodingTests: XCTestCase {
    func testJSONRoundTripGivesTheSamePlan() throws {
        let plan = try XCTUnwrap(makePlan(SpecFixtures.reference, target: .reference).plan)
        let decoded = try JSONDecoder().decode(Plan.self, from: Data(PlanText.json(plan).utf8))
        XCTAssertEqual(decoded, plan)
    }

    func testTextPlanNamesEveryKernelAndTotals() throws {
        let plan = try XCTUnwrap(makePlan(SpecFixtures.reference, target: .reference).plan)
        let text = PlanText.full(plan)
        for kernel in plan.trainKernels + plan.evalKernels { XCTAssertTrue(text.contains(kernel.label), kernel.label) }
        XCTAssertTrue(text.contains("arena: \(grouped(plan.arenaBytes)) bytes"))
        XCTAssertTrue(PlanText.summary(plan).contains("total parameters: 109,386"))
    }

    func testDotGraphIsBalanced() throws {
        let plan = try XCTUnwrap(makePlan(SpecFixtures.reference, target: .reference).plan)
        let dot = PlanText.dot(plan)
        XCTAssertTrue(dot.hasPrefix("digraph"))
        XCTAssertEqual(dot.filter { $0 == "{" }.count, dot.filter { $0 == "}" }.count)
        XCTAssertTrue(dot.contains("k1 -> b_fc1_out"))
    }

    /// The runtime reads the plan, not the spec: where the data is and how an epoch walks it are in it.
    func testThePlanCarriesTheDataSourceAndTheTrainingSchedule() throws {
        var spec = SpecFixtures.reference
        spec.data.resolvedDirectory = "/data/mnist"
        spec.data.validationFraction.value = 0.1
        spec.training.shuffle.value = false
        spec.training.dropLast.value = true
        let plan = try SpecFixtures.plan(spec)
        XCTAssertEqual(plan.data, DataSource(format: .idx, directory: "/data/mnist"))
        XCTAssertEqual(plan.schedule, TrainingSchedule(shuffle: false, dropLast: true, validationFraction: 0.1))
        guard case .gatherBatch(let gather)? = plan.trainKernels.first else { return XCTFail("no gather") }
        XCTAssertEqual(gather.normalization, PixelNormalization(mean: 0.5, standardDeviation: 0.5))
        XCTAssertEqual(gather.element, .uint8)
    }
}
