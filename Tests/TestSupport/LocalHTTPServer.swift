import Foundation
import XCTest

/// python3's http.server serving one folder on 127.0.0.1, on a port the server picks itself (it
/// binds port 0 and prints the number, so no other process can take the port in between).
public final class LocalHTTPServer {
    let process = Process()
    public let port: Int
    public var baseURL: String { "http://127.0.0.1:\(port)/" }

    static let script = #"""
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
handler.func.log_message = lambda *args: None
server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""#

    public init(serving directory: String) throws {
        let python = ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let python else {
            XCTFail("python3 is required for the local HTTP server")
            throw CocoaError(.executableNotLoadable)
        }
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", Self.script, directory]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The first line is the port; read byte by byte so nothing past it is consumed.
        var line = [UInt8]()
        while true {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte.first == UInt8(ascii: "\n") { break }
            line += byte
        }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else {
            process.terminate()
            XCTFail("the HTTP server did not report its port")
            throw CocoaError(.executableLoad)
        }
        self.port = port
    }

    public func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}
