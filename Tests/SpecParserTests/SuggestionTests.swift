import XCTest

@testable import SpecParser

final class SuggestionTests: XCTestCase {
    func testLevenshteinDistances() {
        XCTAssertEqual(levenshtein("", "abc"), 3)
        XCTAssertEqual(levenshtein("epoch", "epochs"), 1)
        XCTAssertEqual(levenshtein("kitten", "sitting"), 3)
        XCTAssertEqual(levenshtein("rleu", "relu"), 1, "a swap of neighbours costs one")
    }

    func testSuggestsNearestWithinAThird() {
        XCTAssertEqual(suggestion(for: "bacth_size", among: ["batch_size", "epochs"]), "batch_size")
        XCTAssertNil(suggestion(for: "colour", among: ["batch_size", "epochs"]))
    }

    func testCaseAndSeparatorsAreIgnored() {
        XCTAssertEqual(suggestion(for: "batchSize", among: ["batch_size"]), "batch_size")
        XCTAssertEqual(suggestion(for: "ReLU", among: ["relu", "gelu"]), "relu")
    }

    func testFrameworkAliases() {
        XCTAssertEqual(suggestion(for: "learning_rate", among: ["kind", "lr"]), "lr")
        XCTAssertEqual(suggestion(for: "Dense", among: ["linear", "relu"]), "linear")
    }

    func testUniquePrefixCompletes() {
        XCTAssertEqual(suggestion(for: "xavier", among: ["default", "xavier_uniform", "kaiming_uniform"]), "xavier_uniform")
        XCTAssertNil(suggestion(for: "kaiming", among: ["kaiming_uniform", "kaiming_normal"]), "ambiguous")
    }

    func testVeryLongWordsGetNoSuggestion() {
        XCTAssertNil(suggestion(for: String(repeating: "e", count: 10_000), among: ["epochs"]))
    }
}
