import KernelInterface
import SpecParser
import XCTest

@testable import Planner

/// Convolutional specs from YAML to plans: decoding of conv2d, pooling and batch_norm, shape inference,
/// every located diagnostic the layers report, and the plan's kernels, buffers and memory report.
final class ConvolutionPlanTests: XCTestCase {
    static func yaml(_ layers: String, input: String = "[1, 28, 28]", batch: Int = 64) -> String {
        """
        name: cnn
        data: {dir: data, normalize: {mean: 0.5, std: 0.5}}
        model:
          input_shape: \(input)
          layers:
        \(layers.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        loss: cross_entropy
        optimizer: {kind: adam, lr: 0.001}
        training: {batch_size: \(batch), epochs: 1}

        """
    }

    /// The spec's decoding diagnostics and, when it decodes, the plan's.
    static func check(_ layers: String, input: String = "[1, 28, 28]", batch: Int = 64) -> (spec: Spec?, plan: Plan?, diagnostics: [Diagnostic]) {
        let loaded = SpecLoader.parse(bytes: Array(yaml(layers, input: input, batch: batch).utf8), path: "cnn.yaml")
        guard let spec = loaded.spec else { return (nil, nil, loaded.diagnostics) }
        let (plan, diagnostics) = makePlan(spec, target: .reference)
        return (spec, plan, loaded.diagnostics + diagnostics)
    }

    static let lenet = """
        - conv2d: {out: 6, kernel: 5, padding: 2, activation: relu}
        - max_pool2d: 2
        - conv2d: {out: 16, kernel: 5}
        - relu
        - max_pool2d: 2
        - flatten
        - linear: {out: 120, activation: relu}
        - linear: {out: 84, activation: relu}
        - linear: {out: 10}
        """

    func testLeNetPlansWithPyTorchShapesAndFusedEpilogues() throws {
        let (_, plan, diagnostics) = Self.check(Self.lenet)
        XCTAssertEqual(diagnostics.filter { $0.severity == .error }.map(\.message), [])
        let p = try XCTUnwrap(plan)
        XCTAssertEqual(p.layers.map(\.outputShape), [[6, 28, 28], [6, 14, 14], [16, 10, 10], [16, 10, 10], [16, 5, 5], [400], [120], [84], [10]])
        XCTAssertEqual(p.parameterCount, 61_706, "LeNet-5 as cnn_pytorch.py defines it")
        XCTAssertEqual(p.parameters.prefix(4).map(\.name), ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"])
        XCTAssertEqual(p.parameters[0].shape, [6, 1, 5, 5])
        XCTAssertEqual(p.parameters[2].shape, [16, 6, 5, 5])
        XCTAssertTrue(p.modelState.isEmpty)
        XCTAssertEqual(verify(p), [])
        let labels = p.trainKernels.map(\.label)
        XCTAssertTrue(labels.contains("conv1.conv2d+bias+relu"))
        XCTAssertTrue(labels.contains("conv2.conv2d+bias+relu"), "the relu layer fuses into conv2's epilogue")
        XCTAssertFalse(labels.contains("conv1.conv2d_grad_input"), "nothing before conv1 needs a gradient")
        XCTAssertTrue(labels.contains("conv2.conv2d_grad_input"))
        XCTAssertTrue(p.fusions.contains { $0.contains("conv2: bias and relu applied in the convolution's epilogue") })
        // The pooling indices are in the memory report; no columns are kept between kernels.
        let summary = PlanText.summary(p)
        XCTAssertTrue(summary.contains("max pooling indices"), summary)
        XCTAssertTrue(summary.contains("convolution copies and transposed dy per thread"), summary)
        XCTAssertFalse(p.buffers.contains { $0.name.contains("columns") })
        XCTAssertEqual(try XCTUnwrap(p.buffer(named: "max_pool1.indices")).elementType, .int32)
        // mlpc plan names the algorithm of each convolution kernel: stride 1 goes direct, and conv2's
        // input gradient puts sixteen samples in the vector lanes.
        let text = PlanText.full(p)
        XCTAssertTrue(text.contains("direct, 5 row-shifted copies 32x28"), text)
        XCTAssertTrue(text.contains("direct, 30 row-shifted copies 14x10"), text)
        XCTAssertTrue(text.contains("16 samples in lanes, dy transposed, taps inside dy only, 6 ch x 4 px registers"), text)
        XCTAssertFalse(text.contains("col2im"), text)
        // One sample's copies per thread, and the weight gradient's scratch, fit the workspace.
        let workspace = try XCTUnwrap(p.buffer(named: "workspace")).shape[1]
        XCTAssertGreaterThanOrEqual(workspace, 30 * 14 * 10 + 16, "conv2's row-shifted copies")
        XCTAssertGreaterThanOrEqual(workspace, 16 * 10 * 10 * 16, "conv2's dy of sixteen samples transposed")
        // Stride 1: both weight gradients take the shifted-copies kernel, and say so.
        let weightGradients = p.trainKernels.compactMap { kernel -> Conv2dBackwardWeights? in
            if case .conv2dBackwardWeights(let k) = kernel { return k } else { return nil }
        }
        XCTAssertEqual(weightGradients.map(\.method), [.stride1, .stride1])
        XCTAssertTrue(PlanText.full(p).contains("input shifted per kernel column (5 copies), 4 ch x 5 kernel rows"), PlanText.full(p))
        XCTAssertTrue(PlanText.full(p).contains("input shifted per kernel column (5 copies), 3 ch x 5 kernel rows"), PlanText.full(p))
        for k in weightGradients {
            XCTAssertGreaterThanOrEqual(workspace, try XCTUnwrap(Stride1WeightGradientLayout(k.geometry)).scratchFloats, "\(k.layer), all tasks on one part")
        }
    }

    func testStridedConvolutionKeepsTheUnfoldingWeightGradient() throws {
        let (_, plan, diagnostics) = Self.check("""
            - conv2d: {out: 4, kernel: 3, stride: 2}
            - conv2d: {out: 5, kernel: 3}
            - flatten
            - linear: {out: 10}
            """)
        XCTAssertEqual(diagnostics.filter { $0.severity == .error }.map(\.message), [])
        let p = try XCTUnwrap(plan)
        let methods = p.trainKernels.compactMap { kernel -> ConvWeightGradientMethod? in
            if case .conv2dBackwardWeights(let k) = kernel { return k.method } else { return nil }
        }
        XCTAssertEqual(methods, [.stride1, .im2colRows], "backward order: conv2 (stride 1), then conv1 (stride 2)")
        XCTAssertTrue(PlanText.full(p).contains("im2col rows per sample"))
        let workspace = try XCTUnwrap(p.buffer(named: "workspace")).shape[1]
        let strided = ConvGeometry(
            inChannels: 1, inHeight: 28, inWidth: 28, outChannels: 4, outHeight: 13, outWidth: 13, kernelHeight: 3, kernelWidth: 3,
            strideHeight: 2, strideWidth: 2, padTop: 0, padLeft: 0, dilationHeight: 1, dilationWidth: 1, groups: 1)
        XCTAssertGreaterThanOrEqual(workspace, strided.weightGradientScratchFloats(rows: strided.patchSize))
    }

    /// pool-relu-backward: each max pool after a ReLU (conv1's, and conv2's relu layer, which its
    /// epilogue absorbs) applies the ReLU's derivative in its backward pass; the ReLU's backward kernel
    /// goes, and turning the pass off gives it back.
    func testLeNetMaxPoolsApplyTheReluBackwardBeforeThem() throws {
        let spec = try XCTUnwrap(Self.check(Self.lenet).spec)
        for disabled in [false, true] {
            let options = PlanOptions(disabledPasses: disabled ? [.poolReluBackward] : [])
            let p = try XCTUnwrap(makePlan(spec, target: .reference, options: options).plan)
            XCTAssertEqual(verify(p), [])
            let report = try XCTUnwrap(p.passes.first { $0.pass == .poolReluBackward })
            XCTAssertEqual(report.applied, !disabled)
            let pools = p.trainKernels.compactMap { if case .pool2dBackward(let k) = $0 { return k } else { return nil } }
            let reluBackward = p.trainKernels.compactMap { if case .activationBackward(let k) = $0, k.activation.code == .relu { return k.layer } else { return nil } }
            if disabled {
                XCTAssertEqual(pools.map(\.label), ["max_pool2.max_pool2d_backward", "max_pool1.max_pool2d_backward"])
                XCTAssertEqual(reluBackward, ["conv2", "conv1"])
                continue
            }
            XCTAssertEqual(report.detail, "conv2 into max_pool2, conv1 into max_pool1")
            XCTAssertEqual(
                pools.map(\.label), ["max_pool2.max_pool2d_backward + conv2.relu_backward", "max_pool1.max_pool2d_backward + conv1.relu_backward"])
            XCTAssertEqual(pools.map { $0.passes }, [["pool-relu-backward"], ["pool-relu-backward"]])
            // 2x2 / 2 windows do not overlap: the derivative comes from the pooled values.
            XCTAssertEqual(pools.map { $0.reluValues?.buffer }, ["max_pool2.out", "max_pool1.out"])
            XCTAssertEqual(pools.map(\.reluValuesArePooled), [true, true])
            XCTAssertEqual(reluBackward, [])
            // The ReLU's backward pass overwrote the pool's gradient in place; the pool writes the result there.
            XCTAssertEqual(pools.map { $0.inputGradient.buffer }, ["d_conv2.out", "d_conv1.out"])
            XCTAssertTrue(p.fusions.contains { $0.hasPrefix("ReLU backward fused into the max pool backward") })
            XCTAssertEqual(try JSONDecoder().decode(Plan.self, from: JSONEncoder().encode(p)), p)
        }
    }

    /// The plan names the register blocks the kernels take: 5 input channels are computed in a block
    /// of 4 and one of 1 by the sample-lane input gradient, 7 output channels by a direct block of 6.
    func testPlanTextNamesTheKernelsRegisterBlocks() throws {
        let p = try XCTUnwrap(Self.check("- conv2d: {out: 5, kernel: 3}\n- conv2d: {out: 7, kernel: 3}\n- flatten\n- linear: {out: 10}").plan)
        let text = PlanText.full(p)
        XCTAssertTrue(text.contains("taps inside dy only, 4 ch x 4 px registers"), text)
        XCTAssertTrue(text.contains("6 ch x 4 x 16 px registers"), text)
    }

    func testDecodingOfSizesPaddingAndShorthands() throws {
        let (spec, plan, diagnostics) = Self.check("""
            - conv2d: {out: 4, kernel: [3, 5], stride: 1, padding: same, dilation: [2, 1], bias: false}
            - avg_pool2d: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}
            - conv2d: {out: 8, kernel: 3, groups: 4}
            - batch_norm: {eps: 0.001, momentum: 0.2}
            - adaptive_avg_pool2d: 1
            - flatten
            - linear: {out: 10}
            """, input: "[2, 15, 14]")
        XCTAssertEqual(diagnostics.filter { $0.severity == .error }.map(\.message), [])
        let layers = try XCTUnwrap(spec).model.layers
        guard case .conv2d(let conv) = layers[0].kind, case .pool2d(let pool) = layers[1].kind, case .batchNorm(let norm) = layers[3].kind
        else { return XCTFail("kinds: \(layers.map(\.kind))") }
        XCTAssertEqual(conv.kernel.value, SpatialPair(3, 5))
        XCTAssertEqual(conv.padding.value, .same)
        XCTAssertEqual(conv.dilation.value, SpatialPair(2, 1))
        XCTAssertFalse(conv.bias.value)
        XCTAssertEqual(pool.kind, .average)
        XCTAssertTrue(pool.ceilMode.value)
        XCTAssertEqual(norm.eps.value, 0.001)
        XCTAssertEqual(norm.momentum?.value, 0.2)
        XCTAssertTrue(norm.affine.value)
        XCTAssertEqual(layers.map(\.name.value), ["conv1", "avg_pool1", "conv2", "bn1", "global_pool1", "flatten1", "fc1"])
        let p = try XCTUnwrap(plan)
        // same keeps [15, 14]; avg pool 3/2 pad 1 ceil: (15 + 2 - 3 + 1) / 2 + 1 = 8, (14 + 2 - 3 + 1) / 2 + 1 = 8.
        XCTAssertEqual(p.layers.map(\.outputShape), [[4, 15, 14], [4, 8, 8], [8, 6, 6], [8, 6, 6], [8, 1, 1], [8], [10]])
        XCTAssertEqual(p.parameters.first { $0.name == "conv2.weight" }?.shape, [8, 1, 3, 3])
        XCTAssertEqual(p.modelState.map(\.name), ["bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"])
        XCTAssertEqual(p.modelState.map(\.shape), [[8], [8], []])
        XCTAssertEqual(p.parameters.filter { $0.layer == "bn1" }.map(\.constant), [1, 0])
        XCTAssertEqual(verify(p), [])
        XCTAssertTrue(PlanText.summary(p).contains("model state (batch norm running statistics)"))
        // The dilated conv1 is unfolded (im2col); the stride-1 grouped conv2 goes direct, its input
        // gradient with samples in the vector lanes.
        let methods = p.trainKernels.compactMap { kernel -> String? in
            switch kernel {
            case .conv2dForward(let k): return "\(k.layer) forward \(k.method)"
            case .conv2dBackwardInput(let k): return "\(k.layer) input gradient \(k.method)"
            default: return nil
            }
        }
        XCTAssertEqual(methods, ["conv1 forward im2col", "conv2 forward direct", "conv2 input gradient sampleLanes"])
        // The resolved spec decodes to the same layers: resolving it again gives the same text.
        let resolvedText = try XCTUnwrap(spec).resolvedYAML
        let resolved = SpecLoader.parse(bytes: Array(resolvedText.utf8), path: "resolved.yaml")
        XCTAssertEqual(resolved.spec?.resolvedYAML, resolvedText)
        XCTAssertTrue(resolvedText.contains("conv2d: {out: 4, kernel: [3, 5], stride: [1, 1], padding: same, dilation: [2, 1]"), resolvedText)
    }

    // MARK: diagnostics, each located at the layer or key at fault

    func testLinearAfterConvWithoutFlattenSuggestsTheFlatten() throws {
        let (_, plan, diagnostics) = Self.check("""
            - conv2d: {out: 6, kernel: 5}
            - linear: {out: 10}
            """)
        XCTAssertNil(plan)
        let d = try XCTUnwrap(diagnostics.first { $0.code == "E0301" })
        XCTAssertEqual(d.location?.line, 7)
        XCTAssertTrue(d.message.contains("[6, 24, 24]"), d.message)
        XCTAssertEqual(d.suggestion, "add `- flatten` before 'fc1' to turn [6, 24, 24] into [3456]")
    }

    func testConvOnAFlatInputIsLocated() throws {
        let (_, plan, diagnostics) = Self.check("""
            - flatten
            - conv2d: {out: 6, kernel: 5}
            - linear: {out: 10}
            """)
        XCTAssertNil(plan)
        let d = try XCTUnwrap(diagnostics.first { $0.code == "E0306" })
        XCTAssertEqual(d.location?.line, 7)
        XCTAssertTrue(d.message.contains("conv2d layer 'conv1'") && d.message.contains("[784]"), d.message)
        XCTAssertEqual(d.notes.first?.location?.line, 6, "the note points at the flatten")
    }

    func testKernelLargerThanPaddedInputIsLocatedAtTheKernel() throws {
        let (_, plan, diagnostics) = Self.check("""
            - conv2d: {out: 6, kernel: 5}
            - max_pool2d: 2
            - conv2d: {out: 16, kernel: 5}
            - max_pool2d: 2
            - conv2d: {out: 16, kernel: 5}
            - flatten
            - linear: {out: 10}
            """)
        XCTAssertNil(plan)
        let d = try XCTUnwrap(diagnostics.first { $0.code == "E0307" })
        XCTAssertEqual(d.location?.line, 10)
        XCTAssertEqual(d.location?.column, 33, "at the kernel's value")
        XCTAssertTrue(d.message.contains("spans 5 rows but the padded input has 4"), d.message)
    }

    func testPoolWindowTooLargeAndSkippingStride() throws {
        let (_, plan, diagnostics) = Self.check("""
            - max_pool2d: {kernel: 2, stride: 3}
            - max_pool2d: {kernel: 20}
            - flatten
            - linear: {out: 10}
            """, input: "[1, 6, 6]")
        XCTAssertNil(plan)
        let warning = try XCTUnwrap(diagnostics.first { $0.code == "W0303" })
        XCTAssertEqual(warning.location?.line, 6)
        XCTAssertTrue(warning.message.contains("1 of every 3 input rows are never read"), warning.message)
        let error = try XCTUnwrap(diagnostics.first { $0.code == "E0307" })
        XCTAssertEqual(error.location?.line, 7)
    }

    func testChannelsThatDoNotDivideByGroups() throws {
        let (_, plan, diagnostics) = Self.check("""
            - conv2d: {out: 6, kernel: 3, groups: 4}
            - flatten
            - linear: {out: 10}
            """, input: "[4, 8, 8]")
        XCTAssertNil(plan)
        let d = try XCTUnwrap(diagnostics.first { $0.code == "E0308" })
        XCTAssertTrue(d.message.contains("its 6 output channels do not divide into 4 groups"), d.message)
        XCTAssertEqual(d.location?.line, 6)
        XCTAssertEqual(d.location?.column, 43, "at the groups value")
    }

    func testBatchNormOfOneValuePerChannelAtBatchOne() throws {
        let (_, plan, diagnostics) = Self.check("""
            - flatten
            - linear: {out: 32}
            - batch_norm
            - linear: {out: 10}
            """, batch: 1)
        XCTAssertNil(plan)
        let d = try XCTUnwrap(diagnostics.first { $0.code == "E0309" })
        XCTAssertEqual(d.location?.line, 8)
        XCTAssertEqual(d.notes.first?.location?.line, 12, "the note points at batch_size")
        // After a convolution each channel has H x W values: batch 1 trains.
        let conv = Self.check("""
            - conv2d: {out: 4, kernel: 3}
            - batch_norm
            - flatten
            - linear: {out: 10}
            """, batch: 1)
        XCTAssertNotNil(conv.plan)
    }

    /// Sizes whose products would overflow are refused before any product is formed.
    func testHugeConvolutionIsRefusedWithoutOverflow() throws {
        for layer in [
            "- conv2d: {out: 16777216, kernel: 65536, dilation: 65536, padding: same}",
            "- conv2d: {out: 16777216, kernel: 5, padding: 2}",
        ] {
            let (_, plan, diagnostics) = Self.check(layer + "\n- flatten\n- linear: {out: 10}")
            XCTAssertNil(plan, layer)
            let d = try XCTUnwrap(diagnostics.first { $0.code == "E0305" }, "\(layer): \(diagnostics.map(\.message))")
            XCTAssertEqual(d.location?.line, 6)
        }
    }

    func testDecodingErrorsAreLocated() {
        let cases: [(String, String)] = [
            ("- conv2d: {out: 6, kernel: 5, padding: half}", "unknown padding 'half'"),
            ("- conv2d: {out: 6, kernel: 5, stride: 2, padding: same}", "same needs stride 1"),
            ("- conv2d: {out: 6}", "kernel"),
            ("- conv2d: {out: 6, kernel: [5, 5, 5]}", "one size or two"),
            ("- conv2d: {out: 6, kernel: 0}", "kernel"),
            ("- max_pool2d: {kernel: 2, padding: 2}", "at most half the kernel"),
            ("- adaptive_avg_pool2d: 0", "output_size"),
            ("- avg_pool2d: {kernel: 2, dilation: 2}", "dilation"),
            ("- max_pool2d: {kernel: 2, count_include_pad: false}", "count_include_pad"),
            ("- batch_norm: {momentum: 2}", "momentum"),
            ("- conv2d: {out: 6, kernel: 5, activation: softmax}", "unknown activation"),
        ]
        for (layer, expected) in cases {
            let (spec, _, diagnostics) = Self.check(layer + "\n- flatten\n- linear: {out: 10}")
            XCTAssertNil(spec, layer)
            let error = diagnostics.first { $0.severity == .error }
            XCTAssertTrue(error?.message.contains(expected) ?? false, "\(layer): \(diagnostics.map(\.message))")
            XCTAssertEqual(error?.location?.line, 6, layer)
        }
    }

    // MARK: pooling options and the batch-norm fold

    func testDilatedMaxPoolAdaptiveSizesCountIncludePadAndCumulativeMomentum() throws {
        let (spec, plan, diagnostics) = Self.check("""
            - max_pool2d: {kernel: 3, stride: 1, padding: 1, dilation: 2}
            - avg_pool2d: {kernel: 3, stride: 2, padding: 1, count_include_pad: false}
            - adaptive_avg_pool2d: [3, 2]
            - batch_norm: {momentum: null}
            - flatten
            - linear: {out: 10}
            """, input: "[2, 15, 14]")
        XCTAssertEqual(diagnostics.filter { $0.severity == .error }.map(\.message), [])
        let layers = try XCTUnwrap(spec).model.layers
        guard case .pool2d(let max) = layers[0].kind, case .pool2d(let average) = layers[1].kind,
            case .adaptiveAveragePool2d(let size) = layers[2].kind, case .batchNorm(let norm) = layers[3].kind
        else { return XCTFail("kinds: \(layers.map(\.kind))") }
        XCTAssertEqual(max.dilation.value, SpatialPair(2, 2))
        XCTAssertTrue(max.countIncludePad.value)
        XCTAssertFalse(average.countIncludePad.value)
        XCTAssertEqual(size.value, SpatialPair(3, 2))
        XCTAssertNil(norm.momentum, "momentum: null is PyTorch's None")
        let p = try XCTUnwrap(plan)
        // Dilated: (15 + 2 - 2 * 2 - 1) / 1 + 1 = 13, (14 + 2 - 5) + 1 = 12; then (13 + 2 - 3) / 2 + 1 = 7, 6.
        XCTAssertEqual(p.layers.map(\.outputShape), [[2, 13, 12], [2, 7, 6], [2, 3, 2], [2, 3, 2], [12], [10]])
        let pools = p.evalKernels.compactMap { if case .pool2dForward(let k) = $0 { return k.geometry } else { return nil } }
        XCTAssertEqual(pools.map(\.dilationHeight), [2, 1, 1])
        XCTAssertEqual(pools.map(\.countIncludePad), [true, false, true])
        XCTAssertEqual(pools.map(\.adaptive), [false, false, true])
        let norms = p.trainKernels.compactMap { if case .batchNormForward(let k) = $0 { return k.geometry } else { return nil } }
        XCTAssertEqual(norms.map(\.cumulativeAverage), [true])
        XCTAssertEqual(verify(p), [])
        // The resolved spec keeps every option: resolving it again gives the same text.
        let resolvedText = try XCTUnwrap(spec).resolvedYAML
        XCTAssertTrue(resolvedText.contains("dilation: [2, 2]"), resolvedText)
        XCTAssertTrue(resolvedText.contains("count_include_pad: false"), resolvedText)
        XCTAssertTrue(resolvedText.contains("adaptive_avg_pool2d: {output_size: [3, 2]"), resolvedText)
        XCTAssertTrue(resolvedText.contains("momentum: null"), resolvedText)
        let resolved = SpecLoader.parse(bytes: Array(resolvedText.utf8), path: "resolved.yaml")
        XCTAssertEqual(resolved.spec?.resolvedYAML, resolvedText)
    }

    func testADilatedWindowLargerThanTheInputIsLocated() throws {
        let (_, plan, diagnostics) = Self.check("- max_pool2d: {kernel: 3, dilation: 4}\n- flatten\n- linear: {out: 10}", input: "[1, 8, 8]")
        XCTAssertNil(plan)
        let error = try XCTUnwrap(diagnostics.first { $0.code == "E0307" })
        XCTAssertTrue(error.message.contains("its window spans 9 rows but the padded input has 8"), error.message)
    }

    func testTheFoldPassReplacesEvaluationBatchNormsAfterConvolutionsAndLinears() throws {
        let layers = """
            - conv2d: {out: 8, kernel: 3, padding: 1, bias: false}
            - batch_norm
            - relu
            - conv2d: {out: 4, kernel: 3, activation: relu}
            - batch_norm
            - max_pool2d: 2
            - flatten
            - linear: {out: 16}
            - batch_norm
            - linear: {out: 10}
            """
        let (_, plan, diagnostics) = Self.check(layers)
        XCTAssertEqual(diagnostics.filter { $0.severity == .error }.map(\.message), [])
        let p = try XCTUnwrap(plan)
        let report = try XCTUnwrap(p.passes.first { $0.pass == .foldBatchNorm })
        XCTAssertTrue(report.applied)
        // bn2 follows conv2's fused relu, which a fold cannot move past.
        XCTAssertEqual(report.detail, "bn1 into conv1 (with relu1), bn3 into fc1")
        let eval = p.evalKernels.map(\.label)
        XCTAssertEqual(eval.filter { $0.contains("batch_norm") }, ["bn2.batch_norm_eval"])
        XCTAssertTrue(eval.contains("bn1.fold_into_conv1"))
        XCTAssertTrue(eval.contains("conv1.conv2d+bias+relu"), "\(eval)")
        XCTAssertFalse(eval.contains("relu1.relu"))
        XCTAssertEqual(p.trainKernels.filter { $0.label.contains("batch_norm") && !$0.isBackward }.count, 3, "training is unchanged")
        XCTAssertEqual(p.buffer(named: "eval.conv1.folded_weight")?.elements, 8 * 9)
        XCTAssertEqual(p.buffer(named: "eval.fc1.folded_weight")?.elements, 32 * 4 * 13 * 13, "one padded panel of 32 features")
        XCTAssertNil(p.buffer(named: "eval.conv1.out"), "conv1 writes relu1's output directly")
        XCTAssertNil(p.buffer(named: "eval.bn1.out"))
        XCTAssertEqual(verify(p), [])
        XCTAssertTrue(PlanText.full(p).contains("applied  fold-batch-norm: bn1 into conv1 (with relu1), bn3 into fc1"))
        let off = makePlan(try XCTUnwrap(Self.check(layers).spec), target: .reference, options: PlanOptions(disabledPasses: [.foldBatchNorm])).plan
        XCTAssertEqual(off?.evalKernels.filter { $0.label.contains("batch_norm_eval") }.count, 3)
    }
}
