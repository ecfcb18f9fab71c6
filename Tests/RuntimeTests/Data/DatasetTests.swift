import KernelInterface
import Planner
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// A table of float32 features with class labels: a `Dataset` that is not IDX's.
struct FloatFeatures: Dataset {
    var values: [Float]
    var labels: [Int32]
    var classes: Int
    var sampleShape: [Int]
    var count: Int { labels.count }
    var samples: SampleValues { .float32(values) }
    var targets: Targets { .classes(labels, classes: classes) }
    var origin: String { "(float table)" }

    /// The same samples as `images`, each byte as a float.
    init(_ images: LabeledImages) {
        values = images.images.map { Float($0) }
        labels = images.labels
        classes = images.classes
        sampleShape = images.imageShape
    }
}

/// The dataset layer: the step's gather reads uint8 and float32 samples alike, training and evaluation
/// go through the `Dataset` interface, and a dataset that does not fit the plan is refused before any step.
final class DatasetTests: XCTestCase {
    static let layers = "    - flatten\n    - linear: {out: 40, activation: relu}\n    - linear: {out: 3}"
    let train = LabeledImages.synthetic(count: 120, imageShape: [TinyData.side, TinyData.side], classes: TinyData.classes, seed: 4)
    let test = LabeledImages.synthetic(count: 40, imageShape: [TinyData.side, TinyData.side], classes: TinyData.classes, seed: 5)

    func testTheFloatGatherMapsEachValueAsAProductThenASum() {
        let features = 5
        let values: [Float] = (0..<(4 * features)).map { Float($0) * 0.37 - 2 }
        let labels: [Int32] = [7, 8, 9, 10]
        let indices: [Int32] = [2, 0, 3]
        let scale: Float = 0.125, shift: Float = -0.3
        var expected: [Float] = []
        for index in indices {
            for f in 0..<features {
                let product = values[Int(index) * features + f] * scale
                expected.append(product + shift)
            }
        }
        for kernels in runnableKernelSets() {
            for parts in 1...3 {
                var out = [Float](repeating: .nan, count: indices.count * features)
                var labelsOut = [Int32](repeating: -1, count: indices.count)
                for part in 0..<parts {
                    kernels.gatherFloatRows(values, labels, features, indices, indices.count, scale, shift, &out, &labelsOut, part, parts)
                }
                XCTAssertEqual(out.map(\.bitPattern), expected.map(\.bitPattern), "\(kernels.isa), \(parts) parts")
                XCTAssertEqual(labelsOut, [9, 7, 10], "\(kernels.isa), \(parts) parts")
            }
        }
    }

    func testTheDatasetInterfaceOfIDXImages() {
        XCTAssertEqual(train.samples.element, .uint8)
        XCTAssertEqual(train.features, TinyData.side * TinyData.side)
        XCTAssertEqual(train.pixels(at: 3), train.image(at: 3))
        XCTAssertEqual(train.classIndex(at: 5), Int(train.labels[5]))
        guard case .classes(let labels, let classes) = train.targets else { return XCTFail("IDX images have class labels") }
        XCTAssertEqual(labels, train.labels)
        XCTAssertEqual(classes, TinyData.classes)
        XCTAssertNil(FloatFeatures(train).pixels(at: 0), "float samples are not drawn as images")
    }

    /// Trains three epochs and returns every parameter bit and the epochs' test accuracies.
    func trainBits(_ data: (train: any Dataset, test: any Dataset), element: SampleElement, threads: Int) throws -> ([UInt32], [Double]) {
        var plan = try TinyData.plan(TinyData.specText(layers: Self.layers, batch: 16), threads: threads).1
        for kernels in [\Plan.trainKernels, \Plan.evalKernels] {
            guard case .gatherBatch(var gather) = plan[keyPath: kernels][0] else { throw TestFailure("no gather") }
            gather.element = element
            plan[keyPath: kernels][0] = .gatherBatch(gather)
        }
        try checkDataset(data.train, fits: plan)
        let executor = try StepExecutor(plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: threads), dropoutSeed: 3)
        initializeParameters(plan, seed: 5, into: executor.parameters)
        let trainer = Trainer(executor: executor, train: data.train, test: data.test, seed: 9, shuffle: true, dropLast: false, validationFraction: 0)
        var accuracies: [Double] = []
        for epoch in 1...3 { accuracies.append(try trainer.runEpoch(epoch).testAccuracy) }
        return ((0..<plan.parameterBlockFloats).map { executor.parameters[$0].bitPattern }, accuracies)
    }

    func testFloat32SamplesTrainBitForBitAsTheSameBytes() throws {
        for threads in [1, 2] {
            let bytes = try trainBits((train, test), element: .uint8, threads: threads)
            let floats = try trainBits((FloatFeatures(train), FloatFeatures(test)), element: .float32, threads: threads)
            XCTAssertEqual(floats.0, bytes.0, "\(threads) thread(s)")
            XCTAssertEqual(floats.1, bytes.1, "\(threads) thread(s)")
            XCTAssertGreaterThan(bytes.1.last!, 0)
        }
    }

    func testADatasetThatDoesNotFitThePlanIsRefused() throws {
        let plan = try TinyData.plan(TinyData.specText(layers: Self.layers, batch: 16)).1
        XCTAssertNoThrow(try checkDataset(train, fits: plan))
        XCTAssertThrowsError(try checkDataset(FloatFeatures(train), fits: plan)) { error in
            XCTAssertEqual("\(error)", "(float table): the samples are float32 but the plan gathers uint8 samples")
        }
        let wide = LabeledImages.synthetic(count: 4, imageShape: [7, 7], classes: 3, seed: 1)
        XCTAssertThrowsError(try checkDataset(wide, fits: plan)) { error in
            XCTAssertTrue("\(error)".contains("a sample has 49 values but the model's input has 36"), "\(error)")
        }
    }
}
