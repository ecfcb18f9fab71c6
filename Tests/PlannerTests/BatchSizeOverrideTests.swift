import SpecParser
import XCTest

@testable import Planner

/// A batch size from the command line (`--batch-size`) replaces the spec's; the memory error it causes
/// must say so instead of reading as the spec's `batch_size` line.
final class BatchSizeOverrideTests: XCTestCase {
    private var smallMachine: Target {
        var target = Target.reference
        target.memoryBytes = 1 << 20
        return target
    }

    private func memoryError(_ spec: Spec) throws -> Diagnostic {
        let (_, diagnostics) = makePlan(spec, target: smallMachine)
        return try XCTUnwrap(diagnostics.first { $0.code == "E0501" }, "\(diagnostics)")
    }

    func testOverrideReplacesTheValueAndRemembersTheSpecsOwn() {
        var spec = SpecFixtures.reference
        spec.training.overrideBatchSize(512, from: "--batch-size")
        XCTAssertEqual(spec.training.batchSize.value, 512)
        XCTAssertEqual(spec.training.batchSize.location, SpecFixtures.at(40))
        XCTAssertEqual(spec.training.batchSizeOverride, CommandLineOverride(flag: "--batch-size", specValue: 64))
    }

    func testMemoryErrorNamesTheFlagThatGaveTheBatchSize() throws {
        var spec = SpecFixtures.reference
        spec.training.overrideBatchSize(512, from: "--batch-size")
        let diagnostic = try memoryError(spec)
        XCTAssertTrue(diagnostic.message.contains("at batch size 512, given by --batch-size 512"), diagnostic.message)
        XCTAssertEqual(diagnostic.suggestion, "reduce the layer sizes or --batch-size")
    }

    func testMemoryErrorStaysAtTheSpecsBatchSizeWithANoteAboutTheOverride() throws {
        var spec = SpecFixtures.reference
        spec.training.overrideBatchSize(512, from: "--batch-size")
        let diagnostic = try memoryError(spec)
        XCTAssertEqual(diagnostic.location, SpecFixtures.at(40))
        let note = diagnostic.notes.first { $0.message.contains("overrides") }
        XCTAssertEqual(note?.message, "--batch-size overrides the spec's batch_size 64")
        XCTAssertEqual(note?.location, SpecFixtures.at(40))
    }

    func testMemoryErrorForTheSpecsOwnBatchSizeMentionsNoFlag() throws {
        let diagnostic = try memoryError(SpecFixtures.reference)
        XCTAssertFalse(diagnostic.message.contains("--batch-size"), diagnostic.message)
        XCTAssertEqual(diagnostic.suggestion, "reduce the layer sizes or the batch size")
        XCTAssertEqual(diagnostic.notes.count, 1)
    }
}
