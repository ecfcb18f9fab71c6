import KernelInterface
import Runtime
import Figures
import Files
import DataSources
import Execution
import TestSupport
import XCTest

/// The tests' deterministic generator (TestSupport's SplitMix64), so every test sees the same "random"
/// data. Named apart because Runtime, which these files import, has a SplitMix64 of its own.
typealias TestRandom = TestSupport.SplitMix64

/// The kernel sets the running CPU can execute (running the others would stop the test process).
func runnableKernelSets() -> [KernelSet] {
    let features = CPUFeatures.current()
    return KernelISA.allCases.filter(features.supports).map(kernels(for:))
}

/// Checks every element against a Double reference with a tolerance that grows with the magnitude of
/// the summed terms (`scale`), as Float rounding does.
func assertClose(
    _ actual: [Float], _ expected: [Double], scale: [Double]? = nil, relative: Double = 1e-5,
    absolute: Double = 1e-6, _ message: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.count, expected.count, message(), file: file, line: line)
    for i in 0..<min(actual.count, expected.count) {
        let tolerance = absolute + relative * (scale?[i] ?? abs(expected[i]))
        let difference = abs(Double(actual[i]) - expected[i])
        if !(difference <= tolerance) {
            XCTFail("\(message()): element \(i) is \(actual[i]), expected \(expected[i]) (tolerance \(tolerance))", file: file, line: line)
            return
        }
    }
}

func bitPatterns(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

/// Double references of the activations, written from their definitions.
func referenceActivation(_ x: Double, _ code: ActivationCode, _ slope: Double) -> Double {
    switch code {
    case .identity: return x
    case .relu: return max(x, 0)
    case .leakyRelu: return x > 0 ? x : slope * x
    case .sigmoid: return 1 / (1 + Foundation.exp(-x))
    case .tanh: return Foundation.tanh(x)
    case .geluErf: return 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot()))
    case .geluTanh: return 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    }
}

/// The derivative by central differences of the Double definition, so it checks the kernels'
/// closed forms rather than repeating them. Away from relu's kink (tests keep |x| > 1e-3).
func referenceActivationDerivative(_ x: Double, _ code: ActivationCode, _ slope: Double) -> Double {
    let h = 1e-6
    return (referenceActivation(x + h, code, slope) - referenceActivation(x - h, code, slope)) / (2 * h)
}

/// Random values that keep clear of 0 by at least 1e-3, so relu-like kinks are never straddled by
/// rounding or finite differences.
extension TestRandom {
    mutating func floatsAwayFromZero(_ count: Int, _ bound: Float = 2) -> [Float] {
        (0..<count).map { _ in
            let magnitude = float(0.001, bound)
            return next() & 1 == 0 ? magnitude : -magnitude
        }
    }
}

import Foundation

/// A weight [out, in] in PyTorch's row-major layout put into mlpc's panels (`WeightPanels`), the
/// padding past the last feature zero: what the linear kernels take.
func weightPanels(_ weight: [Float], out: Int, in inFeatures: Int) -> [Float] {
    var panels = [Float](repeating: 0, count: WeightPanels.storedFloats(outFeatures: out, inFeatures: inFeatures))
    for o in 0..<out {
        for i in 0..<inFeatures {
            panels[WeightPanels.offset(output: o, input: i, inFeatures: inFeatures)] = weight[o * inFeatures + i]
        }
    }
    return panels
}

/// The [out, in] row-major weight held in panels.
func weightFromPanels(_ panels: [Float], out: Int, in inFeatures: Int) -> [Float] {
    var weight = [Float](repeating: 0, count: out * inFeatures)
    for o in 0..<out {
        for i in 0..<inFeatures {
            weight[o * inFeatures + i] = panels[WeightPanels.offset(output: o, input: i, inFeatures: inFeatures)]
        }
    }
    return weight
}

// MARK: - Feature orders (FeatureOrderKernelTests, ShiftedInputKernelTests)

/// How `makeOrder` orders each part's share.
enum FeatureOrderKind: CaseIterable { case liveFirst, deadFirst, random }

/// Stored position -> model feature: within each part's share, as `kind` says.
func makeOrder(n: Int, parts: Int, dead: Set<Int>, kind: FeatureOrderKind, random: inout TestRandom) -> [Int32] {
    var order: [Int32] = []
    for part in 0..<parts {
        let share = Array(outputFeatureShare(outFeatures: n, part: part, parts: parts))
        switch kind {
        case .liveFirst: order += (share.filter { !dead.contains($0) } + share.filter { dead.contains($0) }).map(Int32.init)
        case .deadFirst: order += (share.filter { dead.contains($0) } + share.filter { !dead.contains($0) }).map(Int32.init)
        case .random:
            var shuffled = share
            for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, random.int(below: i + 1)) }
            order += shuffled.map(Int32.init)
        }
    }
    return order
}

/// Rows of a [n, k] row-major matrix (or entries of a vector, k = 1) in the stored order.
func stored(_ model: [Float], _ order: [Int32], k: Int) -> [Float] {
    order.flatMap { model[Int($0) * k..<(Int($0) + 1) * k] }
}

/// Runs `parts` parts of a kernel with `order` (nil: none) and a workspace of `perPart` floats per
/// part; returns the live flags the kernel set.
func runParts(
    _ parts: Int, perPart: Int, order: [Int32]?, n: Int,
    _ kernel: (_ part: Int, _ workspace: UnsafeMutablePointer<Float>, _ order: FeatureOrder?) -> Void
) -> [Float] {
    var live = [Float](repeating: 0, count: n)
    var workspace = [Float](repeating: .nan, count: perPart * parts)
    let orderValues = order ?? []
    orderValues.withUnsafeBufferPointer { orderPointer in
        live.withUnsafeMutableBufferPointer { livePointer in
            let featureOrder = order.map { _ in FeatureOrder(modelFeature: orderPointer.baseAddress!, live: livePointer.baseAddress!) }
            workspace.withUnsafeMutableBufferPointer { ws in
                for part in 0..<parts { kernel(part, ws.baseAddress! + part * perPart, featureOrder) }
            }
        }
    }
    return live
}

/// Pools `planes` planes forward and then backward in `parts` parts (the kernels' plane ranges), as the
/// bindings split them: y starts as `yFill` and dx as NaN, so a value a part leaves out shows. Max pools
/// return the argmax indices (-1 where none was written).
func poolInParts(
    _ k: KernelSet, x: [Float], dy: [Float], _ g: PoolGeometry, planes: Int, isMax: Bool, parts: Int, yFill: Float = .nan
) -> (y: [Float], indices: [Int32], dx: [Float]) {
    var y = [Float](repeating: yFill, count: planes * g.outPixels)
    var indices = [Int32](repeating: -1, count: y.count)
    var dx = [Float](repeating: .nan, count: x.count)
    for part in 0..<parts {
        let share = partRange(count: planes, granule: 1, part: part, parts: parts)
        if isMax {
            k.pool2dForward(x, &y, &indices, g, true, share.lowerBound, share.upperBound)
        } else {
            k.pool2dForward(x, &y, nil, g, false, share.lowerBound, share.upperBound)
        }
    }
    for part in 0..<parts {
        let share = partRange(count: planes, granule: 1, part: part, parts: parts)
        if isMax {
            k.pool2dBackward(dy, indices, &dx, g, share.lowerBound, share.upperBound)
        } else {
            k.pool2dBackward(dy, nil, &dx, g, share.lowerBound, share.upperBound)
        }
    }
    return (y, indices, dx)
}
