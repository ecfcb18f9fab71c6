import XCTest

/// `mlpc check --format` accepts text and json; its help lists exactly those, and `dot` (a format of
/// `mlpc plan`) is refused with a pointer there.
final class CheckFormatTests: XCTestCase {
    func testCheckHelpListsOnlyTheFormatsCheckAccepts() throws {
        let result = try MLPCProcess.run(["check", "--help"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        let help = result.stdout.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
        XCTAssertTrue(help.contains("(values: text, json; default: text)"), result.stdout)
        XCTAssertFalse(help.contains("dot"), result.stdout)
    }

    func testPlanHelpStillListsDot() throws {
        let result = try MLPCProcess.run(["plan", "--help"])
        assertNoCrash(result)
        let help = result.stdout.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
        XCTAssertTrue(help.contains("(values: text, json, dot; default: text)"), result.stdout)
    }

    func testCheckAcceptsJSON() throws {
        let result = try MLPCProcess.run(["check", "specs/mnist_mlp.yaml", "--format", "json", "--data-dir", "/nonexistent-mlpc-data"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.hasPrefix("["), result.stdout)
    }

    func testCheckRefusesDotPointingAtPlan() throws {
        let result = try MLPCProcess.run(["check", "specs/mnist_mlp.yaml", "--format", "dot"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("mlpc plan --format dot"), result.stderr)
    }
}
