import CFuzzerDriver
import Foundation
import FuzzInputChecks

// Fuzzes the safetensors reader: each input is one file's bytes, through SafetensorsFile.parse and a
// serialize-and-parse round trip (see FuzzInputChecks.safetensors).
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(
    LLVMFuzzerRunDriver(&argc, &argv) { start, count in
        let bytes = count > 0 && start != nil ? Array(UnsafeBufferPointer(start: start, count: count)) : []
        let broken = FuzzInputChecks.safetensors(bytes)
        if !broken.isEmpty { fatalError("safetensors reader broke a promise: \(broken.joined(separator: "; "))") }
        return 0
    })
