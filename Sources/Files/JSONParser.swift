// A strict JSON reader that keeps byte offsets and duplicate keys, for the safetensors header
// (Safetensors.swift).
//
// Foundation's JSONSerialization silently keeps one of two duplicate keys and loses positions;
// the header checks need both, so the header is read with this small RFC 8259 parser.

struct JSONValue {
    indirect enum Kind {
        case object([JSONMember])
        case array([JSONValue])
        case string(String)
        case number(String)
        case bool(Bool)
        case null

        var typeName: String {
            switch self {
            case .object: return "object"
            case .array: return "array"
            case .string: return "string"
            case .number: return "number"
            case .bool: return "boolean"
            case .null: return "null"
            }
        }

        var summary: String {
            switch self {
            case .number(let text): return text
            case .string(let text): return "\"\(escapedForMessage(text))\""
            case .bool(let value): return String(value)
            default: return typeName
            }
        }
    }

    var kind: Kind
    var offset: Int  // offset of the value's first byte within the header

    /// The value as an Int when it is a JSON integer literal (no fraction, no exponent) >= 0 that fits.
    var nonNegativeInteger: Int? {
        guard case .number(let text) = kind, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return nil
        }
        return Int(text)
    }
}

struct JSONMember {
    var key: String
    var keyOffset: Int
    var value: JSONValue
}

struct JSONSyntaxError: Error {
    var offset: Int
    var reason: String
}

struct JSONParser {
    let bytes: [UInt8]
    var position = 0
    // Deep nesting would overflow the stack through recursion; safetensors headers nest 3 levels.
    let maximumDepth = 64

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func parseDocument() throws -> JSONValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard position == bytes.count else {
            throw JSONSyntaxError(offset: position, reason: "unexpected data after the top-level value")
        }
        return value
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    private func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func expect(_ byte: UInt8, _ what: String) throws {
        guard peek() == byte else { throw JSONSyntaxError(offset: position, reason: "expected \(what)") }
        position += 1
    }

    private mutating func parseValue(depth: Int) throws -> JSONValue {
        guard depth < maximumDepth else { throw JSONSyntaxError(offset: position, reason: "nested too deeply") }
        let start = position
        guard let byte = peek() else { throw JSONSyntaxError(offset: position, reason: "unexpected end of header") }
        switch byte {
        case UInt8(ascii: "{"):
            position += 1
            var members: [JSONMember] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "}") {
                position += 1
                return JSONValue(kind: .object(members), offset: start)
            }
            while true {
                skipWhitespace()
                let keyOffset = position
                guard peek() == UInt8(ascii: "\"") else { throw JSONSyntaxError(offset: position, reason: "expected a string key") }
                let key = try parseString()
                skipWhitespace()
                try expect(UInt8(ascii: ":"), "':' after an object key")
                skipWhitespace()
                let value = try parseValue(depth: depth + 1)
                members.append(JSONMember(key: key, keyOffset: keyOffset, value: value))
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { position += 1; continue }
                try expect(UInt8(ascii: "}"), "',' or '}' in an object")
                return JSONValue(kind: .object(members), offset: start)
            }
        case UInt8(ascii: "["):
            position += 1
            var elements: [JSONValue] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                position += 1
                return JSONValue(kind: .array(elements), offset: start)
            }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { position += 1; continue }
                try expect(UInt8(ascii: "]"), "',' or ']' in an array")
                return JSONValue(kind: .array(elements), offset: start)
            }
        case UInt8(ascii: "\""):
            return JSONValue(kind: .string(try parseString()), offset: start)
        case UInt8(ascii: "t"):
            try parseLiteral("true")
            return JSONValue(kind: .bool(true), offset: start)
        case UInt8(ascii: "f"):
            try parseLiteral("false")
            return JSONValue(kind: .bool(false), offset: start)
        case UInt8(ascii: "n"):
            try parseLiteral("null")
            return JSONValue(kind: .null, offset: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return JSONValue(kind: .number(try parseNumber()), offset: start)
        default:
            throw JSONSyntaxError(offset: position, reason: "unexpected character '\(escapedForMessage(String(Unicode.Scalar(byte))))'")
        }
    }

    private mutating func parseLiteral(_ word: String) throws {
        let start = position
        for expected in word.utf8 {
            guard peek() == expected else { throw JSONSyntaxError(offset: start, reason: "invalid literal, expected '\(word)'") }
            position += 1
        }
    }

    private func isDigit(_ byte: UInt8?) -> Bool {
        guard let byte else { return false }
        return byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private mutating func parseNumber() throws -> String {
        let start = position
        if peek() == UInt8(ascii: "-") { position += 1 }
        if peek() == UInt8(ascii: "0") {
            position += 1
        } else if isDigit(peek()) {
            while isDigit(peek()) { position += 1 }
        } else {
            throw JSONSyntaxError(offset: position, reason: "invalid number")
        }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard isDigit(peek()) else { throw JSONSyntaxError(offset: position, reason: "invalid number: digits expected after '.'") }
            while isDigit(peek()) { position += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            guard isDigit(peek()) else { throw JSONSyntaxError(offset: position, reason: "invalid number: digits expected in the exponent") }
            while isDigit(peek()) { position += 1 }
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw JSONSyntaxError(offset: position, reason: "truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw JSONSyntaxError(offset: position, reason: "invalid hex digit in \\u escape")
            }
            value = value * 16 + digit
            position += 1
        }
        return value
    }

    /// A string literal, decoded. Linear in its length: the decoded UTF-8 bytes go into one buffer
    /// (an escape appends its scalar's bytes), made a String once at the closing quote.
    private mutating func parseString() throws -> String {
        let start = position
        position += 1  // opening quote
        var decoded: [UInt8] = []
        func append(_ scalar: Unicode.Scalar) {
            UTF8.encode(scalar) { decoded.append($0) }
        }
        while true {
            guard let byte = peek() else { throw JSONSyntaxError(offset: start, reason: "unterminated string") }
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                // The whole header was checked to be valid UTF-8, and escapes only split it at ASCII bytes.
                return String(decoding: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let escape = peek() else { throw JSONSyntaxError(offset: position, reason: "unterminated escape") }
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"):
                    let escapeStart = position - 2
                    var code = try parseHex4()
                    if (0xD800..<0xDC00).contains(code) {
                        guard peek() == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                            throw JSONSyntaxError(offset: escapeStart, reason: "unpaired surrogate in \\u escape")
                        }
                        position += 2
                        let low = try parseHex4()
                        guard (0xDC00..<0xE000).contains(low) else {
                            throw JSONSyntaxError(offset: escapeStart, reason: "unpaired surrogate in \\u escape")
                        }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else {
                        throw JSONSyntaxError(offset: escapeStart, reason: "unpaired surrogate in \\u escape")
                    }
                    append(scalar)
                default:
                    throw JSONSyntaxError(offset: position - 2, reason: "invalid escape '\\\(escapedForMessage(String(Unicode.Scalar(escape))))'")
                }
            default:
                guard byte >= 0x20 else { throw JSONSyntaxError(offset: position - 1, reason: "unescaped control character in string") }
                decoded.append(byte)
            }
        }
    }
}
