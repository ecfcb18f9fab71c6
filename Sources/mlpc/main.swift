import ArgumentParser
import CProcessArguments
import Foundation
import Execution
import Runtime

// Exit statuses: 0 success, 1 the spec or the data is invalid (diagnostics printed), 2 unusable arguments
// or an unreadable path, 3 training stopped (diverged or interrupted; the run directory says why).
// ArgumentParser's own usage errors would exit 64; mlpc promises 2.
// A write past a file-size limit (ulimit -f) should fail with EFBIG and be reported, not kill the process.
signal(SIGXFSZ, SIG_IGN)
// Swift decodes arguments as UTF-8, replacing bytes that are not with U+FFFD: a path given in another
// encoding would silently name another file (and a run would create it). Refuse such arguments.
// The arguments as the C library passed them (Swift's CommandLine reads /proc/self/cmdline on Linux,
// and has none when /proc is not mounted); Swift's own as a fallback.
let (argumentCount, argumentVector): (Int, (Int) -> UnsafeMutablePointer<CChar>?) =
    mlpc_process_argc() > 0
    ? (Int(mlpc_process_argc()), { UnsafeMutablePointer(mutating: mlpc_process_argv()[$0]) })
    : (Int(CommandLine.argc), { CommandLine.unsafeArgv[$0] })
var arguments: [String] = []
for index in 1..<max(argumentCount, 1) {
    guard let raw = argumentVector(index) else { continue }
    guard let argument = String(validatingCString: raw) else {
        let shown = String(decoding: UnsafeRawBufferPointer(start: raw, count: strlen(raw)), as: UTF8.self)
        FileHandle.standardError.write(
            Data("mlpc: error: argument \(index) (\(shown.debugDescription)) is not valid UTF-8; mlpc takes paths and values in UTF-8\n".utf8))
        Foundation.exit(2)
    }
    arguments.append(argument)
}
// MLPC_* variables: a value mlpc cannot use ends it (status 2) before any work; a name it does not
// read is a warning. (Not for --help and --version, which read none.)
if !arguments.contains(where: { ["--help", "-h", "--version", "help"].contains($0) }) {
    let problems = environmentProblems(processEnvironment())
    for warning in problems.warnings { FileHandle.standardError.write(Data("mlpc: warning: \(terminalSafe(warning))\n".utf8)) }
    if let error = problems.errors.first {
        FileHandle.standardError.write(Data("mlpc: error: \(terminalSafe(error))\n".utf8))
        Foundation.exit(2)
    }
}
do {
    var command = try MLPC.parseAsRoot(arguments)
    try command.run()
} catch let exit as ExitCode {
    Foundation.exit(exit.rawValue)
} catch let failure as CommandFailure {
    // An empty message: the diagnostics were printed already.
    if !failure.message.isEmpty {
        FileHandle.standardError.write(Data((terminalSafe(failure.message) + "\n").utf8))
    }
    Foundation.exit(failure.status)
} catch {
    let code = MLPC.exitCode(for: error)
    let message = MLPC.fullMessage(for: error)
    if code == .success {
        print(message)
        Foundation.exit(0)
    }
    FileHandle.standardError.write(Data((terminalSafe(message) + "\n").utf8))
    Foundation.exit(2)
}
