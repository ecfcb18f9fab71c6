import CPNG
import Foundation

// PNG reading goes through libpng's simplified API (png_image_*): it handles every PNG flavour
// (gray, gray+alpha, RGB, RGBA, palette, 1- to 16-bit, interlaced, gamma) and catches libpng's
// longjmp-based errors inside libpng itself, reporting them in image.message, so no longjmp ever
// crosses a Swift frame. Before libpng sees the bytes, the chunk structure is walked here (lengths,
// CRCs, IHDR first, IEND present) so that structural damage is reported with its byte offset.

/// The most pixels a decoded image may have: 64 megapixels (a 256 MiB RGBA buffer), larger than
/// any phone photo, small enough that a forged IHDR cannot exhaust memory.
public let pngMaximumPixelCount = 64 << 20

// libpng's PNG_FORMAT_* macros are composite expressions Swift does not import.
private let pngFormatRGBA: png_uint_32 = 0x02 | 0x01  // PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA
private let pngImageFlag16BitSRGB: png_uint_32 = 0x04  // PNG_IMAGE_FLAG_16BIT_sRGB
private let pngFormatFlagColormap: png_uint_32 = 0x08  // PNG_FORMAT_FLAG_COLORMAP

/// The largest PNG file read: 1 GiB, more than the 64-megapixel limit needs even stored uncompressed
/// at 16 bits per sample, so a huge file named by mistake is refused before it is loaded.
public let pngMaximumFileSize = 1 << 30

/// Reads the PNG file at `path` and decodes it (see `decodePNG(bytes:path:as:)`). A path that
/// cannot be read (missing, a directory, a device or FIFO, no permission) throws `FileAccessError`;
/// a file that is not a usable PNG throws `PNGError`.
public func readPNG(path: String, as format: PixelFormat) throws -> RasterImage {
    let bytes = try readRegularFile(path: path, what: "a PNG image", limit: pngMaximumFileSize)
    return try decodePNG(bytes: bytes, path: path, as: format)
}

/// Decodes any PNG into 8-bit `format` (gray or RGB). Transparent and translucent pixels are
/// composited onto white (the colour of the paper a digit is drawn on), in 8-bit sRGB, before
/// colour becomes gray; colour becomes gray by BT.601 luma (see `RasterImage.luminance()`).
/// 16-bit samples are reduced to 8 bits by libpng, taken as sRGB-encoded unless the file says otherwise. Corrupt input throws; it never crashes.
public func decodePNG(bytes: [UInt8], path: String, as format: PixelFormat) throws -> RasterImage {
    let structure = try checkPNGStructure(bytes, path: path)
    let (width, height) = (structure.width, structure.height)
    if let paletteEntries = structure.paletteEntries {
        try checkPaletteIndices(bytes, width: width, height: height, paletteEntries: paletteEntries, path: path)
    }
    let rgba = try decodeRGBA(bytes, width: width, height: height, path: path)
    var rgb = [UInt8](repeating: 0, count: width * height * 3)
    for i in 0..<(width * height) {
        let alpha = Int(rgba[4 * i + 3])
        for c in 0..<3 {
            let value = Int(rgba[4 * i + c])
            rgb[3 * i + c] = UInt8((value * alpha + 255 * (255 - alpha) + 127) / 255)
        }
    }
    let image = RasterImage(checkedWidth: width, height: height, format: .rgb, pixels: rgb)
    return format == .rgb ? image : image.luminance()
}

private func readBigEndian32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
}

/// What the chunk walk learns: the IHDR size and, for a palette image (colour type 3), how many
/// colours its PLTE chunk holds (nil for other colour types, or when PLTE is missing: libpng
/// reports that itself).
private struct PNGStructure {
    var width: Int
    var height: Int
    var paletteEntries: Int?
}

/// Walks the chunks and returns the IHDR size. Checks the signature, every chunk's length and
/// CRC, that IHDR comes first with a valid size, that there is image data and that IEND ends it.
private func checkPNGStructure(_ bytes: [UInt8], path: String) throws -> PNGStructure {
    guard bytes.count >= 8, Array(bytes[0..<8]) == pngSignature else {
        throw PNGError(path: path, offset: 0, reason: "not a PNG file (the 8-byte PNG signature is missing)")
    }
    var position = 8
    var size: (width: Int, height: Int)?
    var isPaletteImage = false
    var paletteEntries: Int?
    var sawImageData = false
    while true {
        guard position + 12 <= bytes.count else {
            throw PNGError(path: path, offset: position, reason: "file ends inside a chunk header (truncated file, no IEND chunk)")
        }
        let length = Int(readBigEndian32(bytes, position))
        guard length <= pngMaximumDimension else {
            throw PNGError(path: path, offset: position, reason: "chunk length \(length) is larger than PNG allows")
        }
        let typeBytes = Array(bytes[(position + 4)..<(position + 8)])
        guard typeBytes.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }) else {
            throw PNGError(path: path, offset: position + 4, reason: "invalid chunk type bytes \(typeBytes)")
        }
        let type = String(decoding: typeBytes, as: UTF8.self)
        guard length <= bytes.count - position - 12 else {
            throw PNGError(path: path, offset: position, reason: "\(type) chunk of \(length) bytes runs past the end of the file (truncated file)")
        }
        let dataStart = position + 8
        let crcAt = dataStart + length
        let stored = readBigEndian32(bytes, crcAt)
        let computed = pngChunkCRC(bytes[(position + 4)..<crcAt])
        guard stored == computed else {
            throw PNGError(path: path, offset: crcAt, reason: "\(type) chunk CRC mismatch (stored \(stored), computed \(computed)): the file is corrupt")
        }
        if size == nil {
            guard type == "IHDR", length == 13 else {
                throw PNGError(path: path, offset: position, reason: "the first chunk is \(type) (\(length) bytes), expected a 13-byte IHDR")
            }
            let width = Int(readBigEndian32(bytes, dataStart))
            let height = Int(readBigEndian32(bytes, dataStart + 4))
            guard (1...pngMaximumDimension).contains(width), (1...pngMaximumDimension).contains(height) else {
                throw PNGError(path: path, offset: dataStart, reason: "invalid image size \(width)x\(height)")
            }
            guard width * height <= pngMaximumPixelCount else {
                throw PNGError(path: path, offset: dataStart, reason: "image size \(width)x\(height) is more than the \(pngMaximumPixelCount) pixels mlpc decodes")
            }
            size = (width, height)
            isPaletteImage = bytes[dataStart + 9] == 3
        } else if type == "IHDR" {
            throw PNGError(path: path, offset: position, reason: "second IHDR chunk")
        }
        if type == "IDAT" { sawImageData = true }
        if type == "PLTE", isPaletteImage, paletteEntries == nil { paletteEntries = length / 3 }
        position = crcAt + 4
        if type == "IEND" { break }
    }
    guard let size else { throw PNGError(path: path, offset: 8, reason: "no IHDR chunk") }
    guard sawImageData else { throw PNGError(path: path, offset: 8, reason: "no IDAT (image data) chunk") }
    return PNGStructure(width: size.width, height: size.height, paletteEntries: paletteEntries)
}

/// Refuses a palette image with a pixel whose index is past the end of its palette. libpng expands
/// such a pixel to black without a warning, which would silently change the picture. The indices are
/// read with libpng's colour-mapped output, which for a palette image is the file's own indices.
private func checkPaletteIndices(_ bytes: [UInt8], width: Int, height: Int, paletteEntries: Int, path: String) throws {
    var indices = [UInt8](repeating: 0, count: width * height)
    // Room for the largest colour map libpng builds (256 RGBA entries).
    var colormap = [UInt8](repeating: 0, count: 256 * 4)
    try readImage(bytes, width: width, height: height, path: path, format: pngFormatRGBA | pngFormatFlagColormap, flags: 0) { image in
        indices.withUnsafeMutableBytes { buffer in
            colormap.withUnsafeMutableBytes { map in png_image_finish_read(&image, nil, buffer.baseAddress, 0, map.baseAddress) }
        }
    }
    if let first = indices.firstIndex(where: { Int($0) >= paletteEntries }) {
        throw PNGError(
            path: path,
            reason: "pixel (\(first % width), \(first / width)) uses palette index \(indices[first]) but the PLTE chunk holds \(paletteEntries) colour\(paletteEntries == 1 ? "" : "s") (indices 0...\(paletteEntries - 1)): the file is corrupt")
    }
}

/// libpng's message for the last warning or error, with anything a terminal would act on escaped
/// (it can quote bytes of the file).
private func libpngMessage(_ image: png_image) -> String {
    let text = withUnsafeBytes(of: image.message) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
    return escapedForMessage(text)
}

/// Decodes to 8-bit non-premultiplied sRGB RGBA with libpng's simplified API.
private func decodeRGBA(_ bytes: [UInt8], width: Int, height: Int, path: String) throws -> [UInt8] {
    var rgba = [UInt8](repeating: 0, count: width * height * 4)
    // Without a gAMA or sRGB chunk libpng would take 16-bit samples as linear light and brighten
    // them on the way to 8 bits; image editors write them sRGB-encoded, like 8-bit ones.
    try readImage(bytes, width: width, height: height, path: path, format: pngFormatRGBA, flags: pngImageFlag16BitSRGB) { image in
        rgba.withUnsafeMutableBytes { buffer in png_image_finish_read(&image, nil, buffer.baseAddress, 0, nil) }
    }
    return rgba
}

/// One read with libpng's simplified API: the header (its size must be the IHDR's, already checked),
/// then `finish`, which calls png_image_finish_read with the caller's buffers, in `format` with `flags`
/// added. A failure of either step is a PNGError with libpng's message.
private func readImage(
    _ bytes: [UInt8], width: Int, height: Int, path: String, format: png_uint_32, flags: png_uint_32,
    finish: (inout png_image) -> Int32
) throws {
    var image = png_image()
    image.version = png_uint_32(PNG_IMAGE_VERSION)
    defer { png_image_free(&image) }
    let begun = bytes.withUnsafeBytes { buffer in
        png_image_begin_read_from_memory(&image, buffer.baseAddress, buffer.count)
    }
    guard begun != 0, image.warning_or_error & 3 < 2 else {
        throw PNGError(path: path, reason: "libpng cannot read the header: \(libpngMessage(image))")
    }
    guard Int(image.width) == width, Int(image.height) == height else {
        throw PNGError(path: path, offset: 16, reason: "libpng reports size \(image.width)x\(image.height), IHDR says \(width)x\(height)")
    }
    image.format = format
    image.flags |= flags
    guard finish(&image) != 0, image.warning_or_error & 3 < 2 else {
        throw PNGError(path: path, reason: "libpng cannot decode the image: \(libpngMessage(image))")
    }
}
