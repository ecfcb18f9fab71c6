import Foundation

/// Powers of ten a Double holds exactly.
private let exactPowersOfTen: [Double] = (0...22).map { pow(10, Double($0)) }

/// The float32 nearest the Double nearest to the decimal text `bytes[0..<count]` (`[+-]digits[.digits][e[+-]digits]`,
/// at least one digit; no hex, inf or nan), or nil when the text is not such a number. `bytes[count]`
/// must be readable and 0 (libcsv's fields end in one).
///
/// Fast path (Clinger): at most 19 digits whose value and power of ten are exact Doubles give one
/// correctly rounded product or quotient; anything else goes to strtod. Either way the Double is
/// correctly rounded and then rounded to float32 (a double rounding, which can differ from rounding the
/// decimal straight to float32 only for a decimal within 2^-29 ulp of a tie).
func parseDecimalFloat(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Float? {
    var index = 0
    var negative = false
    if index < count && (bytes[index] == 0x2D || bytes[index] == 0x2B) {
        negative = bytes[index] == 0x2D
        index += 1
    }
    var mantissa: UInt64 = 0
    var digits = 0
    var significant = 0
    var exponent = 0
    var sawDigit = false
    while index < count, bytes[index] &- 0x30 < 10 {
        sawDigit = true
        let digit = UInt64(bytes[index] &- 0x30)
        if significant < 19 {
            mantissa = mantissa * 10 + digit
            if mantissa > 0 { significant += 1 }
        } else {
            exponent += 1
            if digit != 0 { significant += 1 }
        }
        digits += 1
        index += 1
    }
    if index < count && bytes[index] == 0x2E {
        index += 1
        while index < count, bytes[index] &- 0x30 < 10 {
            sawDigit = true
            let digit = UInt64(bytes[index] &- 0x30)
            if significant < 19 {
                mantissa = mantissa * 10 + digit
                if mantissa > 0 { significant += 1 }
                exponent -= 1
            } else if digit != 0 {
                significant += 1
            }
            digits += 1
            index += 1
        }
    }
    guard sawDigit else { return nil }
    if index < count && (bytes[index] == 0x65 || bytes[index] == 0x45) {
        index += 1
        var exponentNegative = false
        if index < count && (bytes[index] == 0x2D || bytes[index] == 0x2B) {
            exponentNegative = bytes[index] == 0x2D
            index += 1
        }
        var value = 0
        var sawExponentDigit = false
        while index < count, bytes[index] &- 0x30 < 10 {
            sawExponentDigit = true
            if value < 100_000 { value = value * 10 + Int(bytes[index] &- 0x30) }
            index += 1
        }
        guard sawExponentDigit else { return nil }
        exponent += exponentNegative ? -value : value
    }
    guard index == count else { return nil }
    let result: Double
    if significant <= 19 && mantissa <= (1 << 53) && abs(exponent) <= 22 {
        let m = Double(mantissa)
        result = exponent >= 0 ? m * exactPowersOfTen[exponent] : m / exactPowersOfTen[-exponent]
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
