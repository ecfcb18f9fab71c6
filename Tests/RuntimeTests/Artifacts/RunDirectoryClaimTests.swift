import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// Claiming a run directory changes nothing in it until the run begins.
final class RunDirectoryClaimTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws { root = try makeTemporaryDirectory(self, "mlpc-run-directory") }

    func names(_ path: String) throws -> Set<String> { Set(try FileManager.default.contentsOfDirectory(atPath: path)) }

    /// An old run as mlpc leaves it: its record (run.json, as mlpc writes it) and its weights.
    func writeOldRun(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: path + "/run.json", contents: Data(runRecordJSON().utf8)))
        XCTAssertTrue(FileManager.default.createFile(atPath: path + "/weights.safetensors", contents: Data("weights".utf8)))
    }

    func testOverwriteKeepsTheOldRunUntilTheNewOneBegins() throws {
        let path = root + "/run"
        try writeOldRun(path)
        var claim: RunDirectory? = try RunDirectory(path: path, mode: .overwrite)
        XCTAssertTrue(try names(path).isSuperset(of: ["run.json", "weights.safetensors"]))
        claim = nil  // refused before it began: the old run stays whole
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path + "/run.json")), Data(runRecordJSON().utf8))

        claim = try RunDirectory(path: path, mode: .overwrite)
        try claim?.beginRun()
        // The old run's files go; its record stays until the new run's replaces it.
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + "/weights.safetensors"))
        withExtendedLifetime(claim) {}
    }

    func testAClaimThatNeverBeginsRemovesTheDirectoriesItCreated() throws {
        let path = root + "/a/b/c"
        var claim: RunDirectory? = try RunDirectory(path: path, mode: .fresh)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + "/.mlpc.lock"))
        claim = nil
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/a"), "the claim left a/")
        XCTAssertEqual(try names(root), [])
        withExtendedLifetime(claim) {}
    }

    func testAClaimThatBeginsKeepsItsDirectory() throws {
        let path = root + "/new"
        var claim: RunDirectory? = try RunDirectory(path: path, mode: .fresh)
        try claim?.beginRun()
        claim = nil
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        withExtendedLifetime(claim) {}
    }

    /// A directory that was there before the claim stays, with whatever the user keeps in it.
    func testAClaimOfAnExistingDirectoryLeavesItsFiles() throws {
        let path = root + "/mine"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: path + "/notes.txt", contents: Data("keep".utf8)))
        var claim: RunDirectory? = try RunDirectory(path: path, mode: .fresh)
        claim = nil
        // Only what the claim made goes: its lock file, not the user's files.
        XCTAssertEqual(try names(path), ["notes.txt"])
        withExtendedLifetime(claim) {}
    }

    /// A lock file an earlier run left stays: only one this claim made is removed.
    func testALockFileFromAnEarlierRunStays() throws {
        let path = root + "/old"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: path + "/.mlpc.lock", contents: Data("1\n".utf8)))
        var claim: RunDirectory? = try RunDirectory(path: path, mode: .fresh)
        claim = nil
        XCTAssertEqual(try names(path), [".mlpc.lock"])
        withExtendedLifetime(claim) {}
    }

    /// A finished run without its checkpoint is offered --overwrite only as a replacement.
    func testAFinishedRunWithoutACheckpointIsCalledFinished() throws {
        let path = root + "/done"
        try writeOldRun(path)
        XCTAssertTrue(FileManager.default.createFile(atPath: path + "/model.safetensors", contents: Data(modelBytes())))
        XCTAssertThrowsError(try RunDirectory(path: path, mode: .fresh)) { error in
            XCTAssertTrue("\(error)".contains("it already holds a finished run"), "\(error)")
            XCTAssertFalse("\(error)".contains("--resume"), "\(error)")
        }
    }

    /// A run killed before its first checkpoint cannot be continued: the refusal says to start it again.
    func testARunWithoutACheckpointIsRefusedWithOverwriteAsTheWayOut() throws {
        let path = root + "/run"
        try writeOldRun(path)
        XCTAssertThrowsError(try RunDirectory(path: path, mode: .fresh)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("it holds a run that stopped before its first checkpoint"), text)
            XCTAssertTrue(text.contains("pass --overwrite to start it again"), text)
            XCTAssertFalse(text.contains("--resume"), text)
        }
    }

    func testAFreshClaimOfARunIsRefusedAndReleasesTheLock() throws {
        let path = root + "/run"
        try writeOldRun(path)
        XCTAssertTrue(FileManager.default.createFile(atPath: path + "/checkpoint.safetensors", contents: Data(checkpointBytes())))
        XCTAssertThrowsError(try RunDirectory(path: path, mode: .fresh)) { error in
            XCTAssertTrue("\(error)".contains("already holds a run"), "\(error)")
            XCTAssertTrue("\(error)".contains("--resume \(path) to continue it"), "\(error)")
        }
        // The refused claim's lock is gone with it: the next claim gets the directory.
        XCTAssertNoThrow(try RunDirectory(path: path, mode: .resume))
    }
}

/// run.json as mlpc writes it (the record of a run of `specSHA256`'s spec).
func runRecordJSON(specSHA256: String = String(repeating: "0", count: 64)) -> String {
    RunRecord(
        mlpcVersion: "test", status: "completed", stopReason: nil, specPath: "spec.yaml", specSHA256: specSHA256, specName: "tiny",
        dataDirectory: "data", dataSHA256: [:], seed: 1, threads: 1, kernels: "scalar", cpu: "test", epochs: 1, batchSize: 1,
        parameters: 1, arenaBytes: 1, epochSeconds: [], epochMeanLoss: [], epochTestAccuracy: [], testAccuracy: nil,
        testAccuracyCI95: nil, totalSeconds: 0, startedAt: "2026-01-01T00:00:00Z"
    ).json()
}

/// A safetensors file with one tensor and `format` in its metadata.
func safetensorsBytes(format: String) throws -> [UInt8] {
    try SafetensorsFile(tensors: [SafetensorsTensor(name: "w", shape: [1], values: [0])], metadata: ["format": format]).serialized()
}

func checkpointBytes() -> [UInt8] { (try? safetensorsBytes(format: "mlpc.checkpoint")) ?? [] }
func modelBytes() -> [UInt8] { (try? safetensorsBytes(format: "mlpc.model")) ?? [] }
