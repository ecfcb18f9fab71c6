import Foundation

/// The float32 nearest the Double nearest to the decimal text `bytes[0..<count]` (`[+-]digits[.digits][e[+-]digits]`,
/// at least one digit; no hex, inf or nan), or nil when the text is not such a number. `bytes[count]`
/// must be readable and 0 (libcsv's fields end in one).
///
/// Fast path (Clinger): at most 19 digits whose value and power of ten are exact Doubles give one
/// correctly rounded product or quotient; anything else goes to strtod. Either way the Double is
/// correctly rounded and then rounded to float32 (a double rounding, which can differ from rounding the
/// decimal straight to float32 only for a decimal within 2^-29 ulp of a tie).
private let exactPowersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

func parseDecimalFloat(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Float? {
    var index = 0
    var negative = false
    if count > 0 && (bytes[0] == 0x2D || bytes[0] == 0x2B) {
        negative = bytes[0] == 0x2D
        index = 1
    }
    // Every digit goes into the mantissa (wrapping past 19 digits, which then take the slow path).
    var mantissa: UInt64 = 0
    let digitsStart = index
    while index < count, bytes[index] &- 0x30 < 10 {
        mantissa = mantissa &* 10 &+ UInt64(bytes[index] &- 0x30)
        index += 1
    }
    var digits = index - digitsStart
    var exponent = 0
    if index < count && bytes[index] == 0x2E {
        index += 1
        let fractionStart = index
        while index < count, bytes[index] &- 0x30 < 10 {
            mantissa = mantissa &* 10 &+ UInt64(bytes[index] &- 0x30)
            index += 1
        }
        exponent = fractionStart - index
        digits += index - fractionStart
    }
    guard digits > 0 else { return nil }
    if index < count && (bytes[index] == 0x65 || bytes[index] == 0x45) {
        index += 1
        var exponentNegative = false
        if index < count && (bytes[index] == 0x2D || bytes[index] == 0x2B) {
            exponentNegative = bytes[index] == 0x2D
            index += 1
        }
        var value = 0
        let exponentStart = index
        while index < count, bytes[index] &- 0x30 < 10 {
            if value < 100_000 { value = value * 10 + Int(bytes[index] &- 0x30) }
            index += 1
        }
        guard index > exponentStart else { return nil }
        exponent += exponentNegative ? -value : value
    }
    guard index == count else { return nil }
    if digits <= 19 && mantissa <= (1 << 53) && exponent >= -22 && exponent <= 22 {
        // 10^k for k <= 22 is exact in a Double.
        let power = exactPowersOfTen[abs(exponent)]
        let m = Double(mantissa)
        let result = exponent >= 0 ? m * power : m / power
        return Float(negative ? -result : result)
    }
    // The rare long or extreme numbers: the C library's correctly rounded conversion, on the same text.
    return bytes.withMemoryRebound(to: CChar.self, capacity: count + 1) { text in
        var end: UnsafeMutablePointer<CChar>?
        let value = strtod(text, &end)
        guard let end, text.distance(to: end) == count else { return nil }
        return Float(value)
    }
}
