import Foundation

/// Decodes a `YAMLNode` tree into a `Spec`: checks every key, type and range, fills PyTorch's
/// defaults, and collects every problem in one pass. The sections live in SpecDecoder+Sections.swift
/// and SpecDecoder+Model.swift; this file holds the typed readers they share.
struct SpecDecoder {
    let file: String
    var diagnostics = DiagnosticList()
    /// Set once `data` declares a table: `model.input_shape` may then be left out (the data gives it).
    var inputShapeFromData = false

    init(file: String) {
        self.file = file
    }

    mutating func report(_ diagnostic: Diagnostic) {
        diagnostics.append(diagnostic)
    }
}

/// A mapping being read: its entries by key (first occurrence wins), and where missing keys and
/// defaults point (the key that introduced it, or the node itself).
struct MappingView {
    /// The dotted path used in messages ("training", "model.layers[2].linear"); empty at the root.
    let path: String
    let location: SourceLocation
    let entries: [YAMLNode.Entry]
    private let index: [String: Int]

    init(path: String, location: SourceLocation, entries: [YAMLNode.Entry]) {
        self.path = path
        self.location = location
        self.entries = entries
        var index: [String: Int] = [:]
        for (position, entry) in entries.enumerated() where index[entry.key.value] == nil {
            index[entry.key.value] = position
        }
        self.index = index
    }

    subscript(key: String) -> YAMLNode.Entry? {
        index[key].map { entries[$0] }
    }

    /// `path.key` for messages.
    func qualified(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    /// The section's name as a message says it ("the spec" at the root).
    var displayName: String { path.isEmpty ? "the spec" : "'\(path)'" }
}

/// A closed or half-open interval for checking numbers, described as a message says it.
struct NumberInterval {
    var lower: Double?
    var lowerInclusive = true
    var upper: Double?
    var upperInclusive = true

    static let any = NumberInterval()
    static let positive = NumberInterval(lower: 0, lowerInclusive: false)
    static let nonNegative = NumberInterval(lower: 0)
    /// [0, 1): fractions and probabilities that must leave something over.
    static let unitHalfOpen = NumberInterval(lower: 0, upper: 1, upperInclusive: false)
    static let unitClosed = NumberInterval(lower: 0, upper: 1)

    func contains(_ value: Double) -> Bool {
        if let lower, lowerInclusive ? value < lower : value <= lower { return false }
        if let upper, upperInclusive ? value > upper : value >= upper { return false }
        return true
    }

    var requirement: String {
        switch (lower, upper) {
        case (let lower?, let upper?):
            return "must be in \(lowerInclusive ? "[" : "(")\(format(lower)), \(format(upper))\(upperInclusive ? "]" : ")")"
        case (let lower?, nil):
            return lowerInclusive ? "must be at least \(format(lower))" : "must be greater than \(format(lower))"
        case (nil, let upper?):
            return upperInclusive ? "must be at most \(format(upper))" : "must be less than \(format(upper))"
        case (nil, nil):
            return "must be a finite number"
        }
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

/// What a number must still be once rounded to Float32: the kernels compute in Float, so a value the
/// spec accepts as a Double but Float cannot hold would only show up later, as a divergence in training.
/// Every number must at least be finite in Float32; the cases with a reason say why a field needs more.
enum Float32Rule {
    /// Finite in Float32 (at most 3.4e38 in magnitude); a value that rounds to 0 or a subnormal is harmless.
    case finite
    /// Finite and, when not 0, a normal Float32 (at least 1.2e-38): for divisors and factors that
    /// rounding to 0 or to a subnormal (a handful of bits) makes meaningless.
    case normal(because: String)
    /// Finite and still below 1 after rounding.
    case belowOne(because: String)
}

/// A number as a message prints it: Swift's shortest round-trip form, without the exponent's '+'
/// (1e+300 -> 1e300).
func shortNumber(_ value: Double) -> String {
    "\(value)".replacingOccurrences(of: "e+", with: "e")
}

/// Two significant digits, for Float32's limits in messages (3.4e38, 1.2e-38).
func approximateNumber(_ value: Double) -> String {
    String(format: "%.2g", value).replacingOccurrences(of: "e+", with: "e")
}

let largestFloat32Text = approximateNumber(Double(Float.greatestFiniteMagnitude))
let smallestNormalFloat32Text = approximateNumber(Double(Float.leastNormalMagnitude))

extension SpecDecoder {
    // MARK: Structure

    /// Reads `node` as a mapping (null and absent read as an empty one), reporting duplicate keys.
    /// Returns nil, with a diagnostic, when the node is something else.
    mutating func mapping(_ node: YAMLNode?, path: String, owner: SourceLocation) -> MappingView? {
        guard let node, !node.isNull else {
            return MappingView(path: path, location: owner, entries: [])
        }
        guard case .mapping(let entries) = node.content else {
            report(.error(
                .wrongType, "expected a mapping for '\(path)', found \(node.shortDescription)", at: node.location))
            return nil
        }
        var firstKeys: [String: SourceLocation] = [:]
        var unique: [YAMLNode.Entry] = []
        for entry in entries {
            if let first = firstKeys[entry.key.value] {
                report(.error(
                    .duplicateKey, "duplicate key \(quote(entry.key.value)) in \(path.isEmpty ? "the spec" : "'\(path)'")",
                    at: entry.key.location, notes: [DiagnosticNote("first given here", at: first)]))
            } else {
                firstKeys[entry.key.value] = entry.key.location
                unique.append(entry)
            }
        }
        return MappingView(path: path, location: owner, entries: unique)
    }

    /// Reports keys of `view` that are not in `allowed`, with a did-you-mean among them, or a hint
    /// when the key belongs to another section.
    mutating func checkKeys(_ view: MappingView, allowed: [String], elsewhere: [String: String] = [:]) {
        for entry in view.entries where !allowed.contains(entry.key.value) {
            let key = entry.key.value
            guard !diagnostics.isFull else {
                // Past the limit only the count shows: skip the suggestion search.
                report(.error(.unknownKey, "unknown key", at: entry.key.location))
                continue
            }
            var help: String?
            if let match = suggestion(for: key, among: allowed) {
                help = "did you mean '\(match)'?"
            } else if let section = elsewhere[key] {
                help = "'\(key)' belongs in '\(section)'"
            }
            let known = allowed.map { "'\($0)'" }.joined(separator: ", ")
            let accepted = allowed.isEmpty ? "\(view.displayName) takes no parameters" : "\(view.displayName) accepts \(known)"
            report(.error(
                .unknownKey, "unknown key \(quote(key)) in \(view.displayName)", at: entry.key.location,
                notes: [DiagnosticNote(accepted)], suggestion: help))
        }
    }

    /// Reports a missing required key at the section's location.
    mutating func reportMissing(_ key: String, in view: MappingView, example: String) {
        report(.error(
            .missingKey, "\(view.displayName) is missing the required key '\(key)'", at: view.location,
            suggestion: "add '\(key): \(example)'"))
    }

    // MARK: Typed values

    /// A plain decimal integer (`-12`, `128`), without a fraction, exponent or quotes.
    mutating func integer(
        _ view: MappingView, _ key: String, default defaultValue: Int?, in range: ClosedRange<Int>, example: String
    ) -> Located<Int>? {
        guard let entry = view[key], !entry.value.isNull else {
            if let defaultValue { return Located(defaultValue, at: view.location) }
            reportMissing(key, in: view, example: example)
            return nil
        }
        return integer(entry.value, name: view.qualified(key), in: range)
    }

    mutating func integer(_ node: YAMLNode, name: String, in range: ClosedRange<Int>) -> Located<Int>? {
        guard let scalar = node.scalar, scalar.style == .plain, isDecimalInteger(scalar.value) else {
            report(.error(
                .wrongType, "expected an integer for '\(name)', found \(node.shortDescription)", at: node.location))
            return nil
        }
        guard let value = Int(scalar.value), range.contains(value) else {
            report(.error(.outOfRange, "'\(name)' \(describe(range)), found \(quote(scalar.value))", at: node.location))
            return nil
        }
        return Located(value, at: node.location)
    }

    /// An unsigned 64-bit integer (seeds).
    mutating func unsignedInteger(_ view: MappingView, _ key: String, default defaultValue: UInt64) -> Located<UInt64>? {
        guard let entry = view[key], !entry.value.isNull else { return Located(defaultValue, at: view.location) }
        let node = entry.value
        let name = view.qualified(key)
        guard let scalar = node.scalar, scalar.style == .plain, isDecimalInteger(scalar.value) else {
            report(.error(.wrongType, "expected an integer for '\(name)', found \(node.shortDescription)", at: node.location))
            return nil
        }
        guard let value = UInt64(scalar.value.hasPrefix("+") ? String(scalar.value.dropFirst()) : scalar.value) else {
            report(.error(
                .outOfRange, "'\(name)' must be in [0, \(UInt64.max)], found \(quote(scalar.value))", at: node.location))
            return nil
        }
        return Located(value, at: node.location)
    }

    /// A finite number: an integer or a decimal with an optional exponent (`0.001`, `1e-3`, `5`).
    mutating func number(
        _ view: MappingView, _ key: String, default defaultValue: Double?, in interval: NumberInterval,
        float32 rule: Float32Rule = .finite, example: String
    ) -> Located<Double>? {
        guard let entry = view[key], !entry.value.isNull else {
            if let defaultValue { return Located(defaultValue, at: view.location) }
            reportMissing(key, in: view, example: example)
            return nil
        }
        return number(entry.value, name: view.qualified(key), in: interval, float32: rule)
    }

    mutating func number(
        _ node: YAMLNode, name: String, in interval: NumberInterval, float32 rule: Float32Rule = .finite
    ) -> Located<Double>? {
        guard let scalar = node.scalar, scalar.style == .plain, let value = parseNumberAllowingOverflow(scalar.value) else {
            report(.error(.wrongType, "expected a number for '\(name)', found \(node.shortDescription)", at: node.location))
            return nil
        }
        guard interval.contains(value) else {
            report(.error(.outOfRange, "'\(name)' \(interval.requirement), found \(scalar.value)", at: node.location))
            return nil
        }
        if let problem = float32Problem(value, rule: rule) {
            report(.error(.outOfRange, "'\(name)' \(scalar.value) \(problem)", at: node.location))
            return nil
        }
        return Located(value, at: node.location)
    }

    /// Why `value` breaks `rule` once rounded to Float32 ("is beyond the largest float32 (3.4e38)"),
    /// or nil when it does not.
    func float32Problem(_ value: Double, rule: Float32Rule) -> String? {
        let rounded = Float(value)
        guard rounded.isFinite else {
            return "is beyond the largest float32 (\(largestFloat32Text)); the kernels compute in float32"
        }
        switch rule {
        case .finite:
            return nil
        case .normal(let reason):
            guard value != 0, !rounded.isNormal else { return nil }
            // Decided in Double against 2^-150 (half the smallest subnormal float32; a tie rounds to
            // even, 0): with flush-to-zero and denormals-are-zero set, as the kernels' threads have
            // them, converting to or from a subnormal float gives 0, and the message would depend on
            // the thread.
            let becomes = abs(value) <= 0x1p-150 ? "rounds to 0" : "is a subnormal"
            return "is below the smallest normal float32 (\(smallestNormalFloat32Text)) and \(becomes) in float32; \(reason)"
        case .belowOne(let reason):
            guard rounded >= 1 else { return nil }
            return "rounds to 1 in float32; \(reason)"
        }
    }

    /// `true` or `false` (YAML 1.2; YAML 1.1's yes/no/on/off are refused, they surprise people).
    mutating func boolean(_ view: MappingView, _ key: String, default defaultValue: Bool) -> Located<Bool>? {
        guard let entry = view[key], !entry.value.isNull else { return Located(defaultValue, at: view.location) }
        let node = entry.value
        if let scalar = node.scalar, scalar.style == .plain {
            switch scalar.value {
            case "true", "True", "TRUE": return Located(true, at: node.location)
            case "false", "False", "FALSE": return Located(false, at: node.location)
            default: break
            }
        }
        report(.error(
            .wrongType, "expected true or false for '\(view.qualified(key))', found \(node.shortDescription)",
            at: node.location))
        return nil
    }

    /// Any scalar read as text (a plain `123` is the text "123").
    mutating func string(_ node: YAMLNode, name: String) -> Located<String>? {
        guard let scalar = node.scalar, !scalar.isNull else {
            report(.error(.wrongType, "expected text for '\(name)', found \(node.shortDescription)", at: node.location))
            return nil
        }
        return Located(scalar.value, at: node.location)
    }

    /// A scalar naming one of `choices`, reported with `code` and a did-you-mean when it is not one.
    mutating func choice(
        _ node: YAMLNode, name: String, what: String, among choices: [String], code: SpecDiagnosticCode,
        hint: [String: String] = [:]
    ) -> Located<String>? {
        guard let text = string(node, name: name) else { return nil }
        guard choices.contains(text.value) else {
            let help = hint[text.value] ?? suggestion(for: text.value, among: choices).map { "did you mean '\($0)'?" }
            report(.error(
                code, "unknown \(what) \(quote(text.value)) for '\(name)'", at: node.location,
                notes: [DiagnosticNote("known: \(choices.joined(separator: ", "))")], suggestion: help))
            return nil
        }
        return text
    }

    private func describe(_ range: ClosedRange<Int>) -> String {
        range.upperBound == Int.max ? "must be at least \(range.lowerBound)"
            : "must be between \(range.lowerBound) and \(range.upperBound)"
    }
}

/// `[-+]?[0-9]+`
func isDecimalInteger(_ text: String) -> Bool {
    var digits = Substring(text)
    if let first = digits.first, first == "-" || first == "+" { digits = digits.dropFirst() }
    return !digits.isEmpty && digits.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
}

/// A finite decimal number: digits, an optional sign, point and exponent; no hex, inf or nan.
func parseNumber(_ text: String) -> Double? {
    guard let value = parseNumberAllowingOverflow(text), value.isFinite else { return nil }
    return value
}

/// `parseNumber`, except that a number too large for a Double (`1e400`) is ±infinity rather than nil:
/// it is a number, and the range checks say what is wrong with it.
func parseNumberAllowingOverflow(_ text: String) -> Double? {
    guard !text.isEmpty, text.utf8.count <= 64,
        text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2B || $0 == 0x2D || $0 == 0x2E || $0 == 0x65 || $0 == 0x45 }),
        text.utf8.contains(where: { $0 >= 0x30 && $0 <= 0x39 }),
        let value = Double(text), !value.isNaN
    else { return nil }
    return value
}
