import Foundation
import KernelInterface
import Planner
import SpecParser
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// A tiny, learnable dataset written as IDX files in a temporary directory: 6x6 images of three
/// classes, each a bright bar in its own rows plus deterministic noise.
enum TinyData {
    static let side = 6
    static let classes = 3

    static func idx(images: [[UInt8]]) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 8, 3]
        for d in [images.count, side, side] { bytes += withUnsafeBytes(of: UInt32(d).bigEndian, Array.init) }
        for image in images { bytes += image }
        return bytes
    }

    static func idx(labels: [UInt8]) -> [UInt8] {
        [0, 0, 8, 1] + withUnsafeBytes(of: UInt32(labels.count).bigEndian, Array.init) + labels
    }

    static func sample(label: Int, noise: inout UInt64) -> [UInt8] {
        var image = [UInt8](repeating: 0, count: side * side)
        for i in image.indices {
            noise = noise &* 6364136223846793005 &+ 1442695040888963407
            image[i] = UInt8(truncatingIfNeeded: (noise >> 58))  // 0...63
        }
        for row in (2 * label)..<(2 * label + 2) {
            for column in 0..<side { image[row * side + column] = 200 &+ UInt8(column * 9) }
        }
        return image
    }

    /// Writes train (count) and t10k (count / 4) files into a new temporary directory, removed when
    /// `test` ends, and returns it.
    static func makeDirectory(_ test: XCTestCase, trainCount: Int = 120) throws -> String {
        let directory = try makeTemporaryDirectory(test, "mlpc-tiny")
        var noise: UInt64 = 42
        for (prefix, count) in [("train", trainCount), ("t10k", trainCount / 4)] {
            let labels = (0..<count).map { UInt8($0 % classes) }
            let images = labels.map { sample(label: Int($0), noise: &noise) }
            try Data(idx(images: images)).write(to: URL(fileURLWithPath: "\(directory)/\(prefix)-images-idx3-ubyte"))
            try Data(idx(labels: labels)).write(to: URL(fileURLWithPath: "\(directory)/\(prefix)-labels-idx1-ubyte"))
        }
        return directory
    }

    static func specText(
        layers: String = "    - flatten\n    - linear: {out: 16, activation: relu}\n    - linear: {out: 3}",
        optimizer: String = "{kind: adam, lr: 0.01}", batch: Int = 16, epochs: Int = 30, threads: Int? = nil, seed: Int = 7
    ) -> String {
        """
        name: tiny
        seed: \(seed)
        data:
          dir: unused
          normalize: {mean: 0.5, std: 0.5}
        model:
          input_shape: [1, \(side), \(side)]
          layers:
        \(layers)
        loss: cross_entropy
        optimizer: \(optimizer)
        training:
          batch_size: \(batch)
          epochs: \(epochs)
        \(threads.map { "  threads: \($0)" } ?? "")
        """
    }

    /// Parses and plans `text` for this machine (its best kernels unless `isa` says otherwise); throws
    /// on any diagnostic error. `path` only names the spec in diagnostics.
    static func plan(
        _ text: String, path: String = "tiny.yaml", dataDirectory: String = "unused", threads: Int = 1, isa: KernelISA? = nil,
        disabledPasses: Set<PlanPass> = []
    ) throws -> (Spec, Plan) {
        let loaded = SpecLoader.parse(bytes: Array(text.utf8), path: path, dataDirectoryOverride: dataDirectory)
        guard let spec = loaded.spec else { throw TestFailure("spec did not load: \(loaded.diagnostics)") }
        let target = hostTarget(threads: threads, isa: isa ?? CPUFeatures.current().bestISA)
        let (plan, diagnostics) = makePlan(spec, target: target, options: PlanOptions(disabledPasses: disabledPasses))
        guard let plan, !diagnostics.hasErrors else { throw TestFailure("plan failed: \(diagnostics)") }
        return (spec, plan)
    }

    /// Parses, plans and loads; fails the test on any diagnostic error.
    static func prepare(
        _ text: String, directory: String, threads: Int = 1, isa: KernelISA? = nil, disabledPasses: Set<PlanPass> = []
    ) throws -> (Spec, Plan, LoadedData) {
        let (spec, plan) = try plan(text, dataDirectory: directory, threads: threads, isa: isa, disabledPasses: disabledPasses)
        let data = try loadData(plan: plan, log: { _ in })
        return (spec, plan, data)
    }

    /// Trains `epochs` epochs on the data in `directory` (one of makeDirectory's). The run's output
    /// folder goes inside `directory`, so it goes when the test removes that.
    static func run(
        _ text: String, directory: String, threads: Int = 1, epochs: Int, isa: KernelISA? = nil, disabledPasses: Set<PlanPass> = []
    ) throws -> TrainingRun {
        let (spec, plan, data) = try prepare(text, directory: directory, threads: threads, isa: isa, disabledPasses: disabledPasses)
        let out = directory + "/run-\(UUID().uuidString)"
        let run = try TrainingRun(
            spec: spec, plan: plan, kernels: kernels(for: plan.target.isa), data: data,
            options: .init(epochs: epochs, seed: spec.seed.value, outputDirectory: out, mlpcVersion: "test"))
        try run.prepareOutput()
        for epoch in 1...epochs { _ = try run.runEpoch(epoch) }
        return run
    }

    static func parameterDigest(_ run: TrainingRun) -> String {
        let p = run.trainer.executor.parameters
        let bytes = UnsafeRawBufferPointer(start: p, count: run.plan.parameterBlockFloats * 4)
        return SHA256.hash(Array(bytes)).hex
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension StepExecutor.BatchSource {
    /// A batch of uint8 images with their class labels.
    init(
        images: UnsafePointer<UInt8>, labels: UnsafePointer<Int32>, features: Int, indices: UnsafePointer<Int32>, rows: Int,
        upcoming: UnsafeBufferPointer<Int32> = UnsafeBufferPointer(start: nil, count: 0)
    ) {
        self.init(
            samples: BatchSamples(values: UnsafeRawPointer(images), element: .uint8, labels: labels, features: features),
            indices: indices, rows: rows, upcoming: upcoming)
    }
}
