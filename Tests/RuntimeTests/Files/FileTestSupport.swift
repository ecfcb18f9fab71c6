import Foundation
import XCTest

// Shared by the file and figure tests: an independent PNG writer (stored deflate blocks, so it
// needs no zlib) for fixtures the encoder under test cannot make, and a PNG reader written in
// Python (zlib + struct only) that checks the bytes mlpc writes with another decoder. Scratch
// folders come from makeTemporaryDirectory, which removes them when the test ends.

/// Namespaced so these names cannot collide with other test files of the RuntimeTests module.
enum FileFixtures {
    static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func referenceCRC32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in bytes { c = crcTable[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func bigEndian32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian32(UInt32(data.count)) + body + bigEndian32(referenceCRC32(body))
    }

    /// A zlib stream holding `data` in stored (uncompressed) deflate blocks.
    static func storedZlib(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var start = 0
        repeat {
            let end = min(data.count, start + 65535)
            let length = UInt16(end - start)
            out.append(end == data.count ? 1 : 0)
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
            out += data[start..<end]
            start = end
        } while start < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return out + bigEndian32(b << 16 | a)
    }

    /// A PNG built by hand: `rows` are the unfiltered scanlines (filter byte 0 is added).
    static func handMadePNG(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, rows: [[UInt8]], extraChunks: [[UInt8]] = []) -> [UInt8] {
        let header = bigEndian32(UInt32(width)) + bigEndian32(UInt32(height)) + [bitDepth, colorType, 0, 0, 0]
        let raw: [UInt8] = rows.flatMap { row -> [UInt8] in [0] + row }
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        let extra: [UInt8] = extraChunks.flatMap { $0 }
        return signature + pngChunk("IHDR", header) + extra + pngChunk("IDAT", storedZlib(raw)) + pngChunk("IEND", [])
    }

    struct PythonResult {
        var status: Int32
        var output: String
        var error: String
    }

    static func runPython(_ script: String, arguments: [String]) throws -> PythonResult {
        let candidates = ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        guard let python = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("python3 is not installed; the cross-check with an independent decoder needs it")
        }
        return try runProcess(python, ["-c", script] + arguments)
    }

    /// Runs `executable` to its end and collects its status and both outputs (the python cross-checks
    /// of every test folder go through here).
    static func runProcess(_ executable: String, _ arguments: [String]) throws -> PythonResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return PythonResult(
            status: process.terminationStatus, output: String(decoding: outData, as: UTF8.self),
            error: String(decoding: errData, as: UTF8.self))
    }

    /// A minimal PNG decoder (8-bit gray, RGB, gray+alpha, RGBA; non-interlaced; all five filters)
    /// that verifies every chunk CRC and writes the raw pixels to argv[2], printing
    /// "width height channels".
    static let pythonPNGDecoder = #"""
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'bad signature'
pos, idat, ihdr = 8, b'', None
while True:
    (length,) = struct.unpack('>I', data[pos:pos + 4])
    kind = data[pos + 4:pos + 8]
    body = data[pos + 8:pos + 8 + length]
    (crc,) = struct.unpack('>I', data[pos + 8 + length:pos + 12 + length])
    assert zlib.crc32(kind + body) & 0xffffffff == crc, 'bad crc in ' + kind.decode()
    if kind == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
    elif kind == b'IDAT': idat += body
    pos += 12 + length
    if kind == b'IEND': break
assert pos == len(data), 'data after IEND'
width, height, depth, ctype, comp, filt, interlace = ihdr
assert depth == 8 and interlace == 0 and comp == 0 and filt == 0
channels = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
raw = zlib.decompress(idat)
stride = width * channels
assert len(raw) == height * (stride + 1), 'wrong decompressed size'
out = bytearray()
prev = bytearray(stride)
for y in range(height):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - channels] if i >= channels else 0
        b = prev[i]
        c = prev[i - channels] if i >= channels else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + pred) & 255
        else: assert f == 0, 'bad filter'
    out += line
    prev = line
open(sys.argv[2], 'wb').write(bytes(out))
print(width, height, channels)
"""#

    struct PythonDecodedPNG {
        var width: Int
        var height: Int
        var channels: Int
        var pixels: [UInt8]
    }

    /// Decodes the PNG file at `path` with the Python decoder above.
    static func decodeWithPython(_ path: String) throws -> PythonDecodedPNG {
        let rawPath = path + ".raw"
        let result = try runPython(pythonPNGDecoder, arguments: [path, rawPath])
        guard result.status == 0 else {
            XCTFail("python PNG decoder failed: \(result.error)")
            throw CocoaError(.fileReadCorruptFile)
        }
        let fields = result.output.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        guard fields.count == 3 else {
            XCTFail("unexpected python output: \(result.output)")
            throw CocoaError(.fileReadCorruptFile)
        }
        let pixels = [UInt8](try Data(contentsOf: URL(fileURLWithPath: rawPath)))
        return PythonDecodedPNG(width: fields[0], height: fields[1], channels: fields[2], pixels: pixels)
    }
}
