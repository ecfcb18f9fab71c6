import CZlib

// PNG writing is done here with zlib rather than libpng: libpng reports errors by longjmp, which
// Swift frames cannot survive, and an 8-bit gray or RGB PNG is only three chunks. Every row uses
// filter type 2 (up: each byte minus the one above it) and deflate level 3. The figures are flat colour
// and digits scaled up by whole pixels, so most rows repeat the row above and filter to zeros: the
// files come out as small as unfiltered level 6 gave, in a third of the time (the sample and
// prediction grids took 15-30 ms each at the end of every run).

/// A problem encoding or decoding a PNG. `offset` is the byte offset in the file where it was
/// found, when one is known.
public struct PNGError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var offset: Int?
    public var reason: String

    public init(path: String, offset: Int? = nil, reason: String) {
        self.path = path
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        if let offset { return "\(path): byte \(offset): \(reason)" }
        return "\(path): \(reason)"
    }
}

let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

/// The largest width or height PNG allows (2^31 - 1).
let pngMaximumDimension = Int(Int32.max)

/// Encodes 8-bit pixels (row by row, top first; `channels` 1 = gray, 3 = RGB) as a PNG file.
/// Throws when the pixel count does not match the size or the size is not a valid PNG size.
public func encodePNG(width: Int, height: Int, channels: Int, pixels: [UInt8], path: String = "<memory>") throws -> [UInt8] {
    guard let format = PixelFormat(rawValue: channels) else {
        throw PNGError(path: path, reason: "cannot encode \(channels) channels; use 1 (gray) or 3 (RGB)")
    }
    guard (1...pngMaximumDimension).contains(width), (1...pngMaximumDimension).contains(height) else {
        throw PNGError(path: path, reason: "image size \(width)x\(height) is outside PNG's 1...\(pngMaximumDimension)")
    }
    let image: RasterImage
    do {
        image = try RasterImage(width: width, height: height, format: format, pixels: pixels)
    } catch let error as RasterImageError {
        throw PNGError(path: path, reason: error.reason)
    }
    return try encodePNG(image, path: path)
}

/// Encodes `image` as a PNG file (8-bit gray or RGB, no interlace).
public func encodePNG(_ image: RasterImage, path: String = "<memory>") throws -> [UInt8] {
    guard (1...pngMaximumDimension).contains(image.width), (1...pngMaximumDimension).contains(image.height) else {
        throw PNGError(path: path, reason: "image size \(image.width)x\(image.height) is outside PNG's 1...\(pngMaximumDimension)")
    }
    let rowBytes = image.width * image.format.channels
    let (rawCount, overflow) = (rowBytes + 1).multipliedReportingOverflow(by: image.height)
    guard !overflow, UInt64(rawCount) < UInt64(UInt.max / 2) else {
        throw PNGError(path: path, reason: "image \(image.width)x\(image.height) is too large to encode")
    }
    var out = pngSignature
    var header: [UInt8] = []
    appendBigEndian(UInt32(image.width), to: &header)
    appendBigEndian(UInt32(image.height), to: &header)
    header += [8, image.format == .gray ? 0 : 2, 0, 0, 0]  // bit depth, colour type, deflate, filter method, no interlace
    appendChunk("IHDR", header, to: &out)
    try deflateRows(image, rowBytes: rowBytes, path: path, into: &out)
    appendChunk("IEND", [], to: &out)
    return out
}

/// Encodes the pixels as PNG and writes them to `path` atomically.
public func writePNG(width: Int, height: Int, channels: Int, pixels: [UInt8], to path: String) throws {
    try writeFileAtomically(encodePNG(width: width, height: height, channels: channels, pixels: pixels, path: path), to: path)
}

/// Encodes `image` as PNG and writes it to `path` atomically.
public func writePNG(_ image: RasterImage, to path: String) throws {
    try writeFileAtomically(encodePNG(image, path: path), to: path)
}

/// Compresses the image's rows, each up-filtered behind its filter byte (2), as one zlib stream and appends it
/// as IDAT chunks of at most 64 KiB. Row by row, so that no second copy of the image and no
/// compressBound-sized buffer exist: a 1,000 x 900 RGB canvas used to cost two more 2.7 MB arrays.
private func deflateRows(_ image: RasterImage, rowBytes: Int, path: String, into out: inout [UInt8]) throws {
    var stream = z_stream()
    guard deflateInit_(&stream, 3, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw PNGError(path: path, reason: "zlib could not start compressing")
    }
    defer { deflateEnd(&stream) }
    let chunkCapacity = 1 << 16
    var chunk = [UInt8](repeating: 0, count: chunkCapacity)
    var row = [UInt8](repeating: 0, count: rowBytes + 1)
    row[0] = 2  // filter type up; above the first row PNG counts zeros
    var failure: Int32? = nil
    chunk.withUnsafeMutableBufferPointer { chunkBuffer in
        row.withUnsafeMutableBufferPointer { rowBuffer in
            image.pixels.withUnsafeBufferPointer { pixels in
                /// Runs deflate over what is in avail_in with `flush`, emitting every full chunk.
                func pump(_ flush: Int32) -> Bool {
                    while true {
                        if stream.avail_out == 0 {
                            appendChunk("IDAT", Array(chunkBuffer), to: &out)
                            stream.next_out = chunkBuffer.baseAddress
                            stream.avail_out = uInt(chunkCapacity)
                        }
                        let status = deflate(&stream, flush)
                        if status == Z_STREAM_END { return true }
                        guard status == Z_OK || status == Z_BUF_ERROR else {
                            failure = status
                            return false
                        }
                        if flush == Z_NO_FLUSH && stream.avail_in == 0 && stream.avail_out > 0 { return true }
                    }
                }
                stream.next_out = chunkBuffer.baseAddress
                stream.avail_out = uInt(chunkCapacity)
                for y in 0..<image.height {
                    if rowBytes > 0, let source = pixels.baseAddress {
                        let current = source + y * rowBytes
                        let filtered = rowBuffer.baseAddress! + 1
                        if y == 0 {
                            filtered.update(from: current, count: rowBytes)
                        } else {
                            let above = current - rowBytes
                            for i in 0..<rowBytes { filtered[i] = current[i] &- above[i] }
                        }
                    }
                    stream.next_in = rowBuffer.baseAddress
                    stream.avail_in = uInt(rowBytes + 1)
                    guard pump(Z_NO_FLUSH) else { return }
                }
                guard pump(Z_FINISH) else { return }
                let used = chunkCapacity - Int(stream.avail_out)
                if used > 0 { appendChunk("IDAT", Array(chunkBuffer[0..<used]), to: &out) }
            }
        }
    }
    if let failure { throw PNGError(path: path, reason: "zlib deflate failed with status \(failure)") }
}

private func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
    bytes += [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
}

/// The CRC-32 PNG stores after each chunk, over the chunk type and data.
func pngChunkCRC(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    bytes.withUnsafeBufferPointer { buffer in
        UInt32(crc32(0, buffer.baseAddress, uInt(buffer.count)))
    }
}

private func appendChunk(_ type: String, _ data: [UInt8], to out: inout [UInt8]) {
    appendBigEndian(UInt32(data.count), to: &out)
    let typeStart = out.count
    out += Array(type.utf8)
    out += data
    let crc = pngChunkCRC(out[typeStart...])
    appendBigEndian(crc, to: &out)
}
