import CFuzzerDriver
import Foundation
import FuzzInputChecks

// Fuzzes the spec front end: each input is one spec file's bytes, through SpecLoader.parse and, when it
// decodes, the planner (see FuzzInputChecks.spec). A broken promise stops the fuzzer like a crash.
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(
    LLVMFuzzerRunDriver(&argc, &argv) { start, count in
        let bytes = count > 0 && start != nil ? Array(UnsafeBufferPointer(start: start, count: count)) : []
        let broken = FuzzInputChecks.spec(bytes)
        if !broken.isEmpty { fatalError("spec front end broke a promise: \(broken.joined(separator: "; "))") }
        return 0
    })
