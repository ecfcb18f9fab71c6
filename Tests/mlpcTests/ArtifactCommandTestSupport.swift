import Foundation
import XCTest

// Support for the artifact command tests (eval, predict, show, run --resume): the mlpc binary run as a
// child process, a tiny IDX dataset, a spec for it and a hand-made PNG. Everything sits in one enum so
// it cannot collide with the other mlpcTests files.
enum ArtifactCLI {
    struct Result {
        var status: Int32
        var output: String
        var error: String
    }

    /// The mlpc executable SwiftPM built next to the test bundle.
    static func binary() throws -> URL {
        var candidates = [Bundle.main.bundleURL.appendingPathComponent("mlpc")]
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("mlpc"))
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw XCTSkip("the mlpc executable is not in the build products (\(candidates.map(\.path)))")
        }
        return found
    }

    static func process(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["MLPC_DATA_DIR"] = nil
        env["NO_COLOR"] = "1"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        return (process, out, err)
    }

    /// Reads `pipe` to its end on another thread; the returned function waits for that and gives the bytes.
    static func readInBackground(_ pipe: Pipe) -> () -> Data {
        // The reader thread fills the box; group.wait() orders its write before the read.
        final class DataBox: @unchecked Sendable { var data = Data() }
        let box = DataBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            box.data = pipe.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        return {
            group.wait()
            return box.data
        }
    }

    static func finish(_ process: Process, _ out: Pipe, _ err: Pipe) -> Result {
        // Read both pipes to the end before waiting, so a chatty child cannot block on a full pipe.
        let errors = readInBackground(err)
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = errors()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, output: String(decoding: outData, as: UTF8.self),
            error: String(decoding: errData, as: UTF8.self))
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let (process, out, err) = try process(arguments, environment: environment)
        try process.run()
        return finish(process, out, err)
    }

    static let side = TinyDataset.side

    /// The tiny dataset of TinyDataset with `trainCount` training and `trainCount / 4` test images.
    static func writeDataset(into directory: String, trainCount: Int) throws {
        try TinyDataset.write(to: directory, train: trainCount)
    }

    static func spec(hidden: Int = 16, epochs: Int, batch: Int = 16, dropout: Bool = false) -> String {
        """
        name: tiny
        seed: 3
        data:
          dir: unused
          normalize: {mean: 0.5, std: 0.5}
        model:
          input_shape: [1, \(side), \(side)]
          layers:
            - flatten
            - linear: {out: \(hidden), activation: relu}
        \(dropout ? "    - dropout: {p: 0.2}\n" : "")    - linear: {out: 3}
        loss: cross_entropy
        optimizer: {kind: adam, lr: 0.01}
        training:
          batch_size: \(batch)
          epochs: \(epochs)
          threads: 1
        """
    }

    // A PNG with stored (uncompressed) deflate blocks, so the test needs no zlib.
    static func png(width: Int, height: Int, rgbRows: [[UInt8]]) -> [UInt8] {
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
        func crc32(_ bytes: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                c ^= UInt32(byte)
                for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            }
            return c ^ 0xFFFF_FFFF
        }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return be32(UInt32(data.count)) + body + be32(crc32(body))
        }
        var raw: [UInt8] = []
        for row in rgbRows { raw.append(0); raw.append(contentsOf: row) }
        var zlib: [UInt8] = [0x78, 0x01, 1]
        let length = UInt16(raw.count)
        let lengthBytes: [UInt8] = [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
        zlib.append(contentsOf: lengthBytes)
        zlib.append(contentsOf: raw)
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        zlib += be32(b << 16 | a)
        let header: [UInt8] = be32(UInt32(width)) + be32(UInt32(height)) + [8, 2, 0, 0, 0]
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        return signature + chunk("IHDR", header) + chunk("IDAT", zlib) + chunk("IEND", [])
    }
}
