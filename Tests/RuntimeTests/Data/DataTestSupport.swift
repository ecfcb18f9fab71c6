import CZlib
import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

// Fixtures for the data tests: tiny IDX files built byte by byte, gzip compression with zlib (so the
// gzip files are made independently of the reader under test), scratch folders, python3 for
// cross-checks, and a throwaway HTTP server on 127.0.0.1 for the download tests.

/// Namespaced so these names cannot collide with other test files of the RuntimeTests module.
enum DataFixtures {
    static func makeScratchDirectory(_ name: String = #function) throws -> String {
        let base = FileManager.default.temporaryDirectory.path
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let path = "\(base)/mlpc-data-\(safe)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func bigEndian32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    /// A uint8 IDX file: magic 0x00000800 | rank, the dimensions, then `data` as given (its length
    /// is deliberately not checked, so tests can make short or long files).
    static func idx(_ dimensions: [Int], _ data: [UInt8], typeCode: UInt8 = 0x08) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, typeCode, UInt8(dimensions.count)]
        for size in dimensions { bytes += bigEndian32(UInt32(size)) }
        return bytes + data
    }

    /// `count` images of rows x columns with deterministic pixel values, and their labels.
    static func images(count: Int, rows: Int, columns: Int) -> [UInt8] {
        (0..<(count * rows * columns)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
    }

    /// Compresses `bytes` as one gzip member with zlib's deflate.
    static func gzip(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        // 15 + 16: a 32 KiB window with a gzip wrapper.
        let initStatus = deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(initStatus == Z_OK, "deflateInit2 failed: \(initStatus)")
        defer { deflateEnd(&stream) }
        var input = bytes
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 64)
        let outputCount = output.count
        let status = input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                stream.next_in = source.baseAddress
                stream.avail_in = uInt(source.count)
                stream.next_out = destination.baseAddress
                stream.avail_out = uInt(destination.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        precondition(status == Z_STREAM_END, "deflate did not finish: \(status)")
        return Array(output[0..<(outputCount - Int(stream.avail_out))])
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Writes a complete tiny dataset (MNIST file names) with `trainCount` and `testCount` images of
    /// 2x3 pixels and labels `i % classCount`; gzip-compressed when `compressed`.
    @discardableResult
    static func writeDataset(
        in directory: String, trainCount: Int = 5, testCount: Int = 3, rows: Int = 2, columns: Int = 3,
        classCount: Int = 4, compressed: Bool = false
    ) throws -> [String: [UInt8]] {
        let layout = IDXDatasetLayout.mnist
        let contents: [String: [UInt8]] = [
            layout.trainImages: idx([trainCount, rows, columns], images(count: trainCount, rows: rows, columns: columns)),
            layout.trainLabels: idx([trainCount], (0..<trainCount).map { UInt8($0 % classCount) }),
            layout.testImages: idx([testCount, rows, columns], images(count: testCount, rows: rows, columns: columns).reversed()),
            layout.testLabels: idx([testCount], (0..<testCount).map { UInt8(($0 + 1) % classCount) }),
        ]
        for (name, bytes) in contents {
            if compressed {
                try write(gzip(bytes), to: "\(directory)/\(name).gz")
            } else {
                try write(bytes, to: "\(directory)/\(name)")
            }
        }
        return contents
    }

    /// Asserts that `body` throws an `IDXError` of `kind` and returns it.
    @discardableResult
    static func expectIDXError(
        _ kind: IDXError.Kind, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void
    ) -> IDXError? {
        do {
            try body()
            XCTFail("expected an IDXError of kind \(kind), but nothing was thrown", file: file, line: line)
        } catch let error as IDXError {
            XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("expected an IDXError, got \(error)", file: file, line: line)
        }
        return nil
    }

    /// Asserts that `body` throws a `DatasetError` and returns it.
    static func expectDatasetError(file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) -> DatasetError? {
        do {
            try body()
            XCTFail("expected a DatasetError, but nothing was thrown", file: file, line: line)
        } catch let error as DatasetError {
            return error
        } catch {
            XCTFail("expected a DatasetError, got \(error)", file: file, line: line)
        }
        return nil
    }

    static var pythonPath: String? {
        ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a python3 script and returns its standard output; fails the test if python3 fails.
    static func runPython(_ script: String, arguments: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        guard let python = pythonPath else {
            XCTFail("python3 is required for this cross-check", file: file, line: line)
            throw CocoaError(.executableNotLoadable)
        }
        let result = try FileFixtures.runProcess(python, ["-c", script] + arguments)
        guard result.status == 0 else {
            XCTFail("python3 failed: \(result.error)", file: file, line: line)
            throw CocoaError(.executableLoad)
        }
        return result.output
    }

    /// A TCP port on 127.0.0.1 that nothing listens on: bound once to learn a free number, then
    /// closed (connections to it are refused).
    static func unusedPort() throws -> Int {
        let (descriptor, port) = try boundLoopbackSocket()
        close(descriptor)
        return port
    }

    /// A TCP socket bound to 127.0.0.1 on a port the system picks, and that port; the caller closes it.
    static func boundLoopbackSocket() throws -> (descriptor: Int32, port: Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteUnknown) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard bound == 0, named == 0 else {
            close(descriptor)
            throw CocoaError(.fileWriteUnknown)
        }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }
}

