import Foundation
import XCTest

/// A fresh directory `label-<UUID>` in the system's temporary folder, removed with everything in it
/// when `test` ends, passed or failed, so repeated test runs leave nothing behind in /tmp.
/// Called from setUp, it lives until that test's tear-down.
func makeTemporaryDirectory(_ test: XCTestCase, _ label: String) throws -> String {
    let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}
