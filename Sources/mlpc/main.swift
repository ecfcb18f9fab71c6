import ArgumentParser
import Foundation

// Exit statuses: 0 success, 1 the spec or the data is invalid (diagnostics printed), 2 unusable arguments
// or an unreadable path, 3 training stopped (diverged or interrupted; the run directory says why).
// ArgumentParser's own usage errors would exit 64; mlpc promises 2.
// A write past a file-size limit (ulimit -f) should fail with EFBIG and be reported, not kill the process.
signal(SIGXFSZ, SIG_IGN)
// Swift decodes arguments as UTF-8, replacing bytes that are not with U+FFFD: a path given in another
// encoding would silently name another file (and a run would create it). Refuse such arguments.
for index in 1..<Int(CommandLine.argc) {
    guard let raw = CommandLine.unsafeArgv[index], String(validatingCString: raw) == nil else { continue }
    let shown = String(decoding: UnsafeRawBufferPointer(start: raw, count: strlen(raw)), as: UTF8.self)
    FileHandle.standardError.write(
        Data("mlpc: error: argument \(index) (\(shown.debugDescription)) is not valid UTF-8; mlpc takes paths and values in UTF-8\n".utf8))
    Foundation.exit(2)
}
do {
    var command = try MLPC.parseAsRoot()
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
