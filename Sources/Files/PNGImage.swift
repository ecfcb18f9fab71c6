// An 8-bit raster image (gray or RGB) and the pixel operations `mlpc predict` needs to turn a user's
// picture into a model input: luminance, inversion to white-on-black, and resizing.

/// How the samples of a `RasterImage` are laid out: one gray byte per pixel, or red, green, blue.
public enum PixelFormat: Int, Sendable, Equatable {
    case gray = 1
    case rgb = 3

    public var channels: Int { rawValue }
}

/// A problem with the size of an image a caller built.
public struct RasterImageError: Error, CustomStringConvertible, Equatable {
    public var reason: String
    public var description: String { "invalid image: \(reason)" }
}

/// An 8-bit image stored row by row, top row first, `format.channels` bytes per pixel.
/// The initializer checks that `pixels` holds exactly width * height * channels bytes, so every
/// function taking a `RasterImage` can index it without further checks.
public struct RasterImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let format: PixelFormat
    public let pixels: [UInt8]

    public init(width: Int, height: Int, format: PixelFormat, pixels: [UInt8]) throws {
        guard width >= 0, height >= 0 else {
            throw RasterImageError(reason: "size \(width)x\(height) is negative")
        }
        let (area, overflow1) = width.multipliedReportingOverflow(by: height)
        let (count, overflow2) = area.multipliedReportingOverflow(by: format.channels)
        guard !overflow1, !overflow2, count == pixels.count else {
            throw RasterImageError(
                reason: "a \(width)x\(height) \(format) image needs \(overflow1 || overflow2 ? "too many" : String(count)) bytes, got \(pixels.count)")
        }
        self.width = width
        self.height = height
        self.format = format
        self.pixels = pixels
    }

    /// For callers inside the module that computed `pixels` from a valid size.
    package init(checkedWidth width: Int, height: Int, format: PixelFormat, pixels: [UInt8]) {
        assert(pixels.count == width * height * format.channels)
        self.width = width
        self.height = height
        self.format = format
        self.pixels = pixels
    }

    /// The sample at column `x`, row `y`, channel `channel` (0 for gray).
    public func sample(x: Int, y: Int, channel: Int = 0) -> UInt8 {
        pixels[(y * width + x) * format.channels + channel]
    }

    /// The image as gray: RGB becomes luma with the ITU-R BT.601 weights
    /// (0.299 R + 0.587 G + 0.114 B, as PIL's "L" conversion and torchvision's Grayscale use), so a
    /// gray value stored as R = G = B comes back unchanged.
    public func luminance() -> RasterImage {
        switch format {
        case .gray:
            return self
        case .rgb:
            var gray = [UInt8](repeating: 0, count: width * height)
            for i in gray.indices {
                let r = Int(pixels[3 * i]), g = Int(pixels[3 * i + 1]), b = Int(pixels[3 * i + 2])
                gray[i] = UInt8((299 * r + 587 * g + 114 * b + 500) / 1000)
            }
            return RasterImage(checkedWidth: width, height: height, format: .gray, pixels: gray)
        }
    }

    /// Every sample replaced by 255 - sample (black on white becomes white on black).
    public func inverted() -> RasterImage {
        RasterImage(checkedWidth: width, height: height, format: format, pixels: pixels.map { 255 - $0 })
    }

    /// The mean gray level of the outermost ring of pixels (0 for an empty image).
    public func borderMean() -> Double {
        let gray = luminance()
        guard width > 0, height > 0 else { return 0 }
        var sum = 0
        var count = 0
        for y in 0..<height {
            for x in 0..<width where y == 0 || y == height - 1 || x == 0 || x == width - 1 {
                sum += Int(gray.pixels[y * width + x])
                count += 1
            }
        }
        return Double(sum) / Double(count)
    }
}

/// The weights that make one output sample from the input samples along one axis.
private struct ResampleTap {
    var start: Int
    var weights: [Double]
}

/// Per-output-sample weights for resizing an axis of `source` samples to `target` samples.
/// Shrinking averages the input area each output sample covers (box filter, exact fractional
/// overlaps), so thin strokes fade instead of vanishing; enlarging interpolates linearly between
/// pixel centres (edges clamped).
private func resampleTaps(source: Int, target: Int) -> [ResampleTap] {
    guard source > 0, target > 0 else { return [] }
    let scale = Double(source) / Double(target)
    var taps: [ResampleTap] = []
    taps.reserveCapacity(target)
    for o in 0..<target {
        if source >= target {
            let lo = Double(o) * scale
            let hi = Double(o + 1) * scale
            let first = Int(lo.rounded(.down))
            let last = min(source - 1, Int(hi.rounded(.up)) - 1)
            var weights: [Double] = []
            for i in first...max(first, last) {
                let overlap = min(hi, Double(i + 1)) - max(lo, Double(i))
                weights.append(max(0, overlap) / scale)
            }
            taps.append(ResampleTap(start: first, weights: weights))
        } else {
            let centre = (Double(o) + 0.5) * scale - 0.5
            let clamped = min(max(centre, 0), Double(source - 1))
            let left = min(Int(clamped.rounded(.down)), source - 1)
            let fraction = clamped - Double(left)
            if left + 1 < source {
                taps.append(ResampleTap(start: left, weights: [1 - fraction, fraction]))
            } else {
                taps.append(ResampleTap(start: left, weights: [1]))
            }
        }
    }
    return taps
}

/// The image as gray (see `luminance()`), resized to `width` x `height`: area averaging on an axis
/// that shrinks, bilinear interpolation on one that grows. Negative sizes count as 0; an empty
/// source gives a black image.
public func resizeGray(_ image: RasterImage, width: Int, height: Int) -> RasterImage {
    let width = max(0, width), height = max(0, height)
    let gray = image.luminance()
    guard gray.width > 0, gray.height > 0 else {
        return RasterImage(checkedWidth: width, height: height, format: .gray, pixels: [UInt8](repeating: 0, count: width * height))
    }
    let columns = resampleTaps(source: gray.width, target: width)
    let rows = resampleTaps(source: gray.height, target: height)
    // Horizontal pass into doubles, then vertical pass, rounding once at the end.
    var horizontal = [Double](repeating: 0, count: gray.height * width)
    for y in 0..<gray.height {
        let row = y * gray.width
        for (x, tap) in columns.enumerated() {
            var sum = 0.0
            for (k, w) in tap.weights.enumerated() { sum += w * Double(gray.pixels[row + tap.start + k]) }
            horizontal[y * width + x] = sum
        }
    }
    var out = [UInt8](repeating: 0, count: width * height)
    for (y, tap) in rows.enumerated() {
        for x in 0..<width {
            var sum = 0.0
            for (k, w) in tap.weights.enumerated() { sum += w * horizontal[(tap.start + k) * width + x] }
            out[y * width + x] = UInt8(min(255, max(0, sum.rounded())))
        }
    }
    return RasterImage(checkedWidth: width, height: height, format: .gray, pixels: out)
}

/// When to invert a picture before giving it to a model trained on MNIST, whose digits are white
/// (255) on a black (0) background.
public enum InversionPolicy: Sendable, Equatable {
    case never
    case always
    /// Invert when the mean of the image's outermost ring of pixels is above mid-gray, i.e. the
    /// picture is a dark digit on light paper, the usual way people draw or photograph one.
    case whenBorderIsLight
}

/// A user's picture turned into a model input the way MNIST images look: gray (luma), inverted
/// according to `inversion`, resized to `width` x `height`.
public func modelInputImage(
    from image: RasterImage, width: Int, height: Int, inversion: InversionPolicy = .whenBorderIsLight
) -> RasterImage {
    var gray = image.luminance()
    switch inversion {
    case .never: break
    case .always: gray = gray.inverted()
    case .whenBorderIsLight: if gray.borderMean() > 127.5 { gray = gray.inverted() }
    }
    return resizeGray(gray, width: width, height: height)
}
