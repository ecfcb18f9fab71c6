import Foundation
import XCTest

/// Replays every input committed under Fuzz/regressions/ (inputs the fuzzers once crashed on, or that
/// probe an edge they found) through the same checks the fuzz targets run, and the spec inputs through
/// `mlpc check` as well.
final class FuzzRegressionTests: XCTestCase {
    static let regressions = MLPCProcess.repositoryRoot + "/Fuzz/regressions"

    func inputs(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let folder = Self.regressions + "/" + target
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue, "missing \(folder)")
        return try FileManager.default.contentsOfDirectory(atPath: folder).sorted().filter { !$0.hasPrefix(".") }.map { name in
            (name, try Array(Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))))
        }
    }

    func testSpecRegressionsKeepTheFrontEndsPromises() throws {
        for input in try inputs("spec") {
            XCTAssertEqual(FuzzInputChecks.spec(input.bytes), [], input.name)
        }
    }

    func testSpecRegressionsThroughTheCommandLineExitCleanly() throws {
        for input in try inputs("spec") {
            let result = try MLPCProcess.run(["check", Self.regressions + "/spec/" + input.name], timeout: 30)
            assertNoCrash(result)
            XCTAssertTrue([0, 1, 2].contains(result.status), "\(input.name): exit \(result.status)")
        }
    }

    /// Each within seconds too: the json-* inputs are the header reader's worst cases (long strings of
    /// escapes, many escaped entries), which it reads in linear time.
    func testSafetensorsRegressionsKeepTheReadersPromises() throws {
        for input in try inputs("safetensors") {
            let start = Date()
            XCTAssertEqual(FuzzInputChecks.safetensors(input.bytes), [], input.name)
            let seconds = Date().timeIntervalSince(start)
            XCTAssertLessThan(seconds, 5, "\(input.name) took \(seconds) s")
        }
    }

    func testIDXRegressionsKeepTheReadersPromises() throws {
        let directory = try makeTemporaryDirectory(self, "mlpc-idx-regression")
        for input in try inputs("idx") {
            XCTAssertEqual(FuzzInputChecks.idx(input.bytes, directory: directory), [], input.name)
        }
    }
}
