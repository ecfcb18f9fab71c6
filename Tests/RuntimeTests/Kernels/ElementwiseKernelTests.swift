import KernelInterface
import Runtime
import Figures
import Files
import DataSources
import Execution
import XCTest

/// Stand-alone activations, dropout, argmax and softmax rows.
final class ElementwiseKernelTests: XCTestCase {
    static let counts = [1, 15, 16, 17, 100, 1000]

    func testActivationForwardMatchesDefinitions() {
        var random = TestRandom(seed: 11)
        for set in runnableKernelSets() {
            for activation in ActivationCode.allCases {
                for count in Self.counts {
                    let x = random.floatsAwayFromZero(count, 6)
                    var y = [Float](repeating: .nan, count: count)
                    forEachPart(3) { part, parts in set.activationForward(x, &y, count, activation, 0.05, part, parts) }
                    let expected = x.map { referenceActivation(Double($0), activation, 0.05) }
                    assertClose(y, expected, relative: 2e-6, absolute: 2e-7, "\(set.isa) \(activation) count \(count)")
                }
            }
        }
    }

    func testActivationForwardWorksInPlace() {
        var random = TestRandom(seed: 12)
        for set in runnableKernelSets() {
            for activation in ActivationCode.allCases {
                let x = random.floats(37, -3, 3)
                var separate = [Float](repeating: 0, count: x.count)
                set.activationForward(x, &separate, x.count, activation, 0.1, 0, 1)
                var inPlace = x
                inPlace.withUnsafeMutableBufferPointer { buffer in
                    set.activationForward(buffer.baseAddress!, buffer.baseAddress!, x.count, activation, 0.1, 0, 1)
                }
                XCTAssertEqual(bitPatterns(inPlace), bitPatterns(separate), "\(set.isa) \(activation)")
            }
        }
    }

    func testActivationBackwardMatchesNumericalDerivative() {
        var random = TestRandom(seed: 13)
        for set in runnableKernelSets() {
            for activation in ActivationCode.allCases {
                for count in Self.counts {
                    let preact = random.floatsAwayFromZero(count, 4)
                    let output = preact.map { Float(referenceActivation(Double($0), activation, 0.05)) }
                    let dy = random.floats(count)
                    var dx = [Float](repeating: .nan, count: count)
                    forEachPart(2) { part, parts in
                        set.activationBackward(dy, preact, output, &dx, count, activation, 0.05, part, parts)
                    }
                    let expected = (0..<count).map { Double(dy[$0]) * referenceActivationDerivative(Double(preact[$0]), activation, 0.05) }
                    assertClose(dx, expected, relative: 0, absolute: 2e-6, "\(set.isa) \(activation) count \(count)")
                }
            }
        }
    }

    func testActivationsAreBitIdenticalForAnyNumberOfParts() {
        var random = TestRandom(seed: 14)
        for set in runnableKernelSets() {
            let x = random.floats(333, -3, 3), dy = random.floats(333)
            for activation in ActivationCode.allCases {
                var whole = [Float](repeating: 0, count: x.count), wholeGrad = whole
                set.activationForward(x, &whole, x.count, activation, 0.1, 0, 1)
                set.activationBackward(dy, x, whole, &wholeGrad, x.count, activation, 0.1, 0, 1)
                for parts in [2, 3, 5] {
                    var split = [Float](repeating: .nan, count: x.count), splitGrad = split
                    forEachPart(parts) { part, parts in
                        set.activationForward(x, &split, x.count, activation, 0.1, part, parts)
                        set.activationBackward(dy, x, whole, &splitGrad, x.count, activation, 0.1, part, parts)
                    }
                    XCTAssertEqual(bitPatterns(split), bitPatterns(whole), "\(set.isa) \(activation) parts \(parts)")
                    XCTAssertEqual(bitPatterns(splitGrad), bitPatterns(wholeGrad), "\(set.isa) \(activation) parts \(parts)")
                }
            }
        }
    }

    func testDropoutKeepsAboutOneMinusPAndScalesTheKeptOnes() {
        for set in runnableKernelSets() {
            let count = 20_000
            let x = [Float](repeating: 2, count: count)
            var y = [Float](repeating: .nan, count: count), mask = y
            set.dropoutForward(x, &y, &mask, count, 0.25, 42, 7, 0, 1)
            let kept = mask.filter { $0 != 0 }
            XCTAssertTrue(mask.allSatisfy { $0 == 0 || $0 == Float(1 / 0.75) }, "mask is 0 or 1/(1-p)")
            XCTAssertEqual(Double(kept.count) / Double(count), 0.75, accuracy: 0.015)
            for i in 0..<count { XCTAssertEqual(y[i], 2 * mask[i]) }
        }
    }

    func testDropoutMaskDependsOnSeedAndStepButNotOnTheSplit() {
        for set in runnableKernelSets() {
            let count = 1001
            let x = TestRandomArrays.ones(count)
            func mask(seed: UInt64, step: UInt64, parts: Int) -> [Float] {
                var y = [Float](repeating: .nan, count: count), mask = y
                forEachPart(parts) { part, parts in set.dropoutForward(x, &y, &mask, count, 0.5, seed, step, part, parts) }
                return mask
            }
            let reference = mask(seed: 1, step: 1, parts: 1)
            XCTAssertEqual(mask(seed: 1, step: 1, parts: 3), reference)
            XCTAssertEqual(mask(seed: 1, step: 1, parts: 5), reference)
            XCTAssertNotEqual(mask(seed: 2, step: 1, parts: 1), reference)
            XCTAssertNotEqual(mask(seed: 1, step: 2, parts: 1), reference)
        }
    }

    func testDropoutWithZeroProbabilityKeepsEverythingAndWorksInPlace() {
        for set in runnableKernelSets() {
            var values: [Float] = [1, -2, 3, 4.5]
            var mask = [Float](repeating: .nan, count: 4)
            values.withUnsafeMutableBufferPointer { v in
                set.dropoutForward(v.baseAddress!, v.baseAddress!, &mask, 4, 0, 9, 9, 0, 1)
            }
            XCTAssertEqual(values, [1, -2, 3, 4.5])
            XCTAssertEqual(mask, [1, 1, 1, 1])
        }
    }

    func testDropoutBackwardMultipliesByTheMask() {
        for set in runnableKernelSets() {
            let dy: [Float] = (0..<35).map { Float($0) - 10 }
            let mask: [Float] = (0..<35).map { $0 % 3 == 0 ? 0 : 2 }
            var dx = [Float](repeating: .nan, count: 35)
            forEachPart(3) { part, parts in set.dropoutBackward(dy, mask, &dx, 35, part, parts) }
            XCTAssertEqual(dx, (0..<35).map { dy[$0] * mask[$0] })
        }
    }

    func testArgmaxRowsPicksTheFirstLargest() {
        for set in runnableKernelSets() {
            let logits: [Float] = [0, 3, 3, 1, /**/ -5, -4, -9, -4, /**/ 7, 0, 0, 0]
            var out = [Int32](repeating: -1, count: 3)
            set.argmaxRows(logits, 3, 4, &out)
            XCTAssertEqual(out, [1, 1, 0])
        }
    }

    func testSoftmaxRowsMatchesDefinitionAndSurvivesLargeLogits() {
        for set in runnableKernelSets() {
            let logits: [Float] = [1, 2, 3, /**/ 1000, 1000, 999]
            var probabilities = [Float](repeating: .nan, count: 6)
            set.softmaxRows(logits, 2, 3, &probabilities)
            func softmax(_ row: [Double]) -> [Double] {
                let top = row.max()!
                let e = row.map { Foundation.exp($0 - top) }
                return e.map { $0 / e.reduce(0, +) }
            }
            assertClose(probabilities, softmax([1, 2, 3]) + softmax([1000, 1000, 999]), relative: 1e-6, "\(set.isa)")
        }
    }
}

enum TestRandomArrays {
    static func ones(_ count: Int) -> [Float] { [Float](repeating: 1, count: count) }
}

/// Calls body for every part of a split, in order, on one thread.
func forEachPart(_ parts: Int, _ body: (Int, Int) -> Void) {
    for part in 0..<parts { body(part, parts) }
}

import Foundation
