import Files
import DataSources
import Execution
import Foundation
import SpecParser

// Every MLPC_* environment variable mlpc (or one of its scripts) reads, and what each accepts. A value
// mlpc cannot use is an error before any work is done; a name it does not read (a typo such as
// MLPC_KERNEL, or a switch that is no longer read) is a warning, so that a setting never goes silently
// unheeded.

/// The MLPC_* variables the mlpc executable reads.
public let mlpcEnvironmentVariables = ["MLPC_DATA_DIR", "MLPC_KERNELS", "MLPC_MNIST_MIRRORS"]
/// Those the repository's scripts and tests read (scripts/test, scripts/bench-vs-pytorch, the test
/// suite): mlpc leaves them alone.
let scriptEnvironmentVariables = [
    "MLPC_BENCH_PYTHON", "MLPC_BENCH_MAXRSS_KB", "MLPC_BENCH_WALL_S", "MLPC_SANITIZERS", "MLPC_TEST_SANITIZER",
    "MLPC_TEST_MNIST_DIR", "MLPC_BINARY",
]
/// Switches that were replaced by a command-line option, with the option to use.
let replacedEnvironmentVariables = [
    "MLPC_FEATURE_ORDER": "--disable-pass live-first-features",
    "MLPC_SPARSE_INPUT": "--disable-pass sparse-input",
]

/// What is wrong with the MLPC_* variables of `environment`: errors (values mlpc cannot use) and
/// warnings (names it does not read). MLPC_KERNELS is checked where the kernels are chosen.
public func environmentProblems(_ environment: [String: String]) -> (errors: [String], warnings: [String]) {
    var errors: [String] = []
    var warnings: [String] = []
    if let mirrors = environment["MLPC_MNIST_MIRRORS"], let problem = mirrorListProblem(mirrors) {
        errors.append("MLPC_MNIST_MIRRORS=\(escapedForMessage(mirrors)): \(problem)")
    }
    let known = Set(mlpcEnvironmentVariables + scriptEnvironmentVariables)
    for name in environment.keys.sorted() where name.hasPrefix("MLPC_") && !known.contains(name) {
        if let option = replacedEnvironmentVariables[name] {
            warnings.append("\(name) is not read by mlpc; use \(option)")
            continue
        }
        let close = mlpcEnvironmentVariables.filter { levenshtein($0, name) <= 2 }
        let hint = close.first.map { "; did you mean \($0)?" } ?? " (mlpc reads \(mlpcEnvironmentVariables.joined(separator: ", ")))"
        warnings.append("\(escapedForMessage(name)) is not an environment variable mlpc reads\(hint)")
    }
    return (errors, warnings)
}

/// Why `value` is not a usable MLPC_MNIST_MIRRORS (comma-separated http:// or https:// base URLs), or
/// nil. An empty value is as if unset (the default mirrors).
func mirrorListProblem(_ value: String) -> String? {
    guard !value.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
    let entries = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    guard !entries.isEmpty else { return "names no mirror; give comma-separated http:// or https:// base URLs" }
    for entry in entries {
        let lower = entry.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://"), entry.count > (lower.hasPrefix("https") ? 8 : 7),
            !entry.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F })
        else {
            return "'\(escapedForMessage(entry))' is not an http:// or https:// URL"
        }
    }
    return nil
}
