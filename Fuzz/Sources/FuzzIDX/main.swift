import CFuzzerDriver
import Foundation
import FuzzInputChecks

// Fuzzes the IDX reader, which reads paths: each input is written to a file in a scratch directory of
// this process (its first byte picks plain, raw gzip or wrapped gzip; see FuzzInputChecks.idx).
var template = Array((NSTemporaryDirectory() + "/mlpc-fuzz-idx-XXXXXX").utf8CString)
guard let made = mkdtemp(&template) else { fatalError("cannot create a scratch directory for the IDX fuzzer") }
let scratchDirectory = String(cString: made)

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
let status = LLVMFuzzerRunDriver(&argc, &argv) { start, count in
    let bytes = count > 0 && start != nil ? Array(UnsafeBufferPointer(start: start, count: count)) : []
    let broken = FuzzInputChecks.idx(bytes, directory: scratchDirectory)
    if !broken.isEmpty { fatalError("IDX reader broke a promise: \(broken.joined(separator: "; "))") }
    return 0
}
try? FileManager.default.removeItem(atPath: scratchDirectory)
exit(status)
