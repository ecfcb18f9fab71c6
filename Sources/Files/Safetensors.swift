import Foundation

// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length N, N bytes of UTF-8 JSON mapping each tensor name to {dtype, shape, data_offsets} (offsets
// relative to the first byte after the header) plus an optional "__metadata__" string->string map,
// then the data region, which the tensors must cover exactly, without gaps or overlaps.
//
// mlpc writes and reads F32 tensors, and I64 ones for counts (PyTorch keeps batch norm's
// num_batches_tracked as int64), held as Float values (exact up to 2^24). The reader treats the file as hostile: every number in the header
// is checked (with overflow checks) before it is used, so no input can make it read out of bounds.

/// The element types mlpc reads and writes: 32-bit floats, and 64-bit integers for counts.
public enum SafetensorsDType: String, Equatable, Sendable {
    case f32 = "F32"
    case i64 = "I64"

    var byteCount: Int { self == .f32 ? 4 : 8 }
}

/// One tensor of a safetensors file: its name, its shape (outermost first, row-major), its values in
/// row-major order, and the element type in the file (an I64 tensor's values are whole numbers).
public struct SafetensorsTensor: Equatable, Sendable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]
    public var dtype: SafetensorsDType

    public init(name: String, shape: [Int], values: [Float], dtype: SafetensorsDType = .f32) {
        self.name = name
        self.shape = shape
        self.values = values
        self.dtype = dtype
    }
}

/// A problem reading or writing a safetensors file. `offset` is the byte offset in the file the
/// problem was found at (for header problems, the position of the offending JSON value).
public struct SafetensorsError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var offset: Int?
    public var tensor: String?
    public var reason: String

    public init(path: String, offset: Int? = nil, tensor: String? = nil, reason: String) {
        self.path = path
        self.offset = offset
        self.tensor = tensor
        self.reason = reason
    }

    public var description: String {
        var text = pathForMessage(path)
        if let offset { text += ": byte \(offset)" }
        if let tensor { text += ": tensor '\(escapedForMessage(tensor))'" }
        return text + ": " + reason
    }
}

/// The tensors and metadata of a safetensors file. Tensors read from a file are in data order
/// (ascending `data_offsets`); files this type writes put them in element-type-then-name order, so a
/// round trip gives them in that order.
public struct SafetensorsFile: Equatable, Sendable {
    /// The largest header accepted; the reference implementation uses the same limit.
    public static let maximumHeaderLength = 100_000_000

    public var tensors: [SafetensorsTensor]
    /// The `__metadata__` map (string keys to string values only, as the format requires).
    public var metadata: [String: String]

    public init(tensors: [SafetensorsTensor], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor called `name`, if there is one.
    public func tensor(named name: String) -> SafetensorsTensor? {
        tensors.first { $0.name == name }
    }

    // MARK: Reading

    /// Reads and validates the file at `path`. A path that cannot be read throws `FileAccessError`;
    /// bytes that are not a valid safetensors file throw `SafetensorsError`.
    public static func read(path: String) throws -> SafetensorsFile {
        try parse(bytes: readRegularFile(path: path, what: "a safetensors file"), path: path)
    }

    /// Parses and validates a whole safetensors file held in `bytes`; `path` only names it in errors.
    /// The `__metadata__` strings of a header (the JSON after the 8-byte length), read by the same
    /// parser as `parse`; nil when the header is not such an object.
    public static func metadata(ofHeader header: [UInt8]) -> [String: String]? {
        var parser = JSONParser(bytes: header)
        guard String(validating: header, as: UTF8.self) != nil, let root = try? parser.parseDocument(),
            case .object(let members) = root.kind
        else { return nil }
        guard let entry = members.first(where: { $0.key == "__metadata__" }) else { return [:] }
        guard case .object(let pairs) = entry.value.kind else { return nil }
        var metadata: [String: String] = [:]
        for pair in pairs {
            if case .string(let text) = pair.value.kind { metadata[pair.key] = text }
        }
        return metadata
    }

    public static func parse(bytes: [UInt8], path: String) throws -> SafetensorsFile {
        func fail(_ offset: Int?, _ tensor: String? = nil, _ reason: String) -> SafetensorsError {
            SafetensorsError(path: path, offset: offset, tensor: tensor, reason: reason)
        }
        guard bytes.count >= 8 else {
            throw fail(0, nil, "file is \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        var declared: UInt64 = 0
        for i in 0..<8 { declared |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard declared <= UInt64(maximumHeaderLength) else {
            throw fail(0, nil, "header length \(declared) is larger than the limit of \(maximumHeaderLength) bytes")
        }
        let headerLength = Int(declared)
        guard headerLength <= bytes.count - 8 else {
            throw fail(0, nil, "header length \(headerLength) runs past the end of the file (\(bytes.count - 8) bytes follow the length)")
        }
        let header = Array(bytes[8..<(8 + headerLength)])
        guard String(validating: header, as: UTF8.self) != nil else {
            throw fail(8, nil, "header is not valid UTF-8")
        }
        let root: JSONValue
        do {
            var parser = JSONParser(bytes: header)
            root = try parser.parseDocument()
        } catch let error as JSONSyntaxError {
            throw fail(8 + error.offset, nil, "header is not valid JSON: \(error.reason)")
        }
        guard case .object(let members) = root.kind else {
            throw fail(8 + root.offset, nil, "header is a JSON \(root.kind.typeName), expected an object")
        }

        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var sawMetadata = false
        var seenNames = Set<String>()
        struct Entry {
            var name: String
            var dtype: SafetensorsDType
            var shape: [Int]
            var count: Int
            var begin: Int
            var end: Int
            var offset: Int  // file offset of the data_offsets value, for errors
        }
        var entries: [Entry] = []

        for member in members {
            let name = member.key
            let at = 8 + member.keyOffset
            if name == "__metadata__" {
                if sawMetadata { throw fail(at, nil, "duplicate key '__metadata__'") }
                sawMetadata = true
                guard case .object(let pairs) = member.value.kind else {
                    throw fail(8 + member.value.offset, nil, "'__metadata__' is a JSON \(member.value.kind.typeName), expected an object of strings")
                }
                for pair in pairs {
                    guard case .string(let text) = pair.value.kind else {
                        throw fail(8 + pair.value.offset, nil, "'__metadata__' value for key '\(escapedForMessage(pair.key))' is a JSON \(pair.value.kind.typeName), expected a string")
                    }
                    if metadata[pair.key] != nil {
                        throw fail(8 + pair.keyOffset, nil, "duplicate '__metadata__' key '\(escapedForMessage(pair.key))'")
                    }
                    metadata[pair.key] = text
                }
                continue
            }
            if !seenNames.insert(name).inserted {
                throw fail(at, name, "duplicate tensor name")
            }
            guard case .object(let fields) = member.value.kind else {
                throw fail(8 + member.value.offset, name, "entry is a JSON \(member.value.kind.typeName), expected an object with dtype, shape and data_offsets")
            }
            func field(_ key: String) throws -> JSONValue {
                let matches = fields.filter { $0.key == key }
                if matches.count > 1, let second = matches.dropFirst().first {
                    throw fail(8 + second.keyOffset, name, "duplicate key '\(key)'")
                }
                guard let found = matches.first else {
                    throw fail(8 + member.value.offset, name, "missing key '\(key)'")
                }
                return found.value
            }
            let dtypeValue = try field("dtype")
            guard case .string(let dtype) = dtypeValue.kind else {
                throw fail(8 + dtypeValue.offset, name, "'dtype' is a JSON \(dtypeValue.kind.typeName), expected a string")
            }
            guard let elementType = SafetensorsDType(rawValue: dtype) else {
                throw fail(8 + dtypeValue.offset, name, "dtype is \(escapedForMessage(dtype)); only F32 and I64 tensors can be read")
            }
            let shapeValue = try field("shape")
            guard case .array(let dims) = shapeValue.kind else {
                throw fail(8 + shapeValue.offset, name, "'shape' is a JSON \(shapeValue.kind.typeName), expected an array of integers")
            }
            var shape: [Int] = []
            var count = 1
            for dim in dims {
                guard let size = dim.nonNegativeInteger else {
                    throw fail(8 + dim.offset, name, "shape dimension \(dim.kind.summary) is not a non-negative integer")
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: size)
                guard !overflow else { throw fail(8 + dim.offset, name, "shape \(dims.map(\.kind.summary)) has too many elements") }
                shape.append(size)
                count = product
            }
            let offsetsValue = try field("data_offsets")
            guard case .array(let pair) = offsetsValue.kind, pair.count == 2,
                let begin = pair[0].nonNegativeInteger, let end = pair[1].nonNegativeInteger
            else {
                throw fail(8 + offsetsValue.offset, name, "'data_offsets' must be an array of two non-negative integers [begin, end]")
            }
            guard begin <= end else {
                throw fail(8 + offsetsValue.offset, name, "data_offsets [\(begin), \(end)] end before they begin")
            }
            guard end <= dataLength else {
                throw fail(8 + offsetsValue.offset, name, "data_offsets [\(begin), \(end)] run past the end of the data region (\(dataLength) bytes, file offsets \(dataStart)..<\(bytes.count))")
            }
            let (byteCount, overflow) = count.multipliedReportingOverflow(by: elementType.byteCount)
            guard !overflow, byteCount == end - begin else {
                throw fail(8 + offsetsValue.offset, name, "shape \(shape) holds \(count) \(elementType.rawValue) values (\(overflow ? "too many" : String(byteCount)) bytes) but data_offsets [\(begin), \(end)] span \(end - begin) bytes")
            }
            entries.append(
                Entry(name: name, dtype: elementType, shape: shape, count: count, begin: begin, end: end, offset: 8 + offsetsValue.offset))
        }

        // Contiguous coverage: sorted by offsets, each tensor starts where the previous one ended,
        // the first at 0 and the last ends at the end of the file.
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var cursor = 0
        var previous: String?
        for entry in entries {
            if entry.begin < cursor, let previous {
                throw fail(entry.offset, entry.name, "data_offsets [\(entry.begin), \(entry.end)] overlap tensor '\(escapedForMessage(previous))', which ends at \(cursor)")
            }
            if entry.begin > cursor {
                throw fail(entry.offset, entry.name, "data_offsets [\(entry.begin), \(entry.end)] leave bytes \(cursor)..<\(entry.begin) of the data region (file offset \(dataStart + cursor)) covered by no tensor")
            }
            cursor = entry.end
            previous = entry.name
        }
        guard cursor == dataLength else {
            throw fail(dataStart + cursor, nil, "the tensors cover \(cursor) bytes of the data region but it holds \(dataLength) bytes")
        }

        var tensors: [SafetensorsTensor] = []
        tensors.reserveCapacity(entries.count)
        for entry in entries {
            let start = dataStart + entry.begin
            if entry.dtype == .i64 {
                let values = (0..<entry.count).map { index in
                    var bits: UInt64 = 0
                    for byte in 0..<8 { bits |= UInt64(bytes[start + 8 * index + byte]) << (8 * UInt64(byte)) }
                    return Float(Int64(bitPattern: bits))
                }
                tensors.append(SafetensorsTensor(name: entry.name, shape: entry.shape, values: values, dtype: .i64))
                continue
            }
            var values = [Float](repeating: 0, count: entry.count)
            values.withUnsafeMutableBytes { destination in
                bytes.withUnsafeBytes { source in
                    destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<(start + entry.count * 4)]))
                }
            }
            // The file is little-endian; a no-op on every platform mlpc runs on.
            for i in values.indices { values[i] = Float(bitPattern: UInt32(littleEndian: values[i].bitPattern)) }
            tensors.append(SafetensorsTensor(name: entry.name, shape: entry.shape, values: values))
        }
        return SafetensorsFile(tensors: tensors, metadata: metadata)
    }

    /// Throws if any value of any tensor is NaN or infinite, naming the first such tensor and the
    /// element's flat (row-major) index. A loader calls this when it needs usable parameters.
    public func requireFinite(path: String) throws {
        for tensor in tensors {
            if let index = tensor.values.firstIndex(where: { !$0.isFinite }) {
                throw SafetensorsError(
                    path: path, tensor: tensor.name,
                    reason: "element \(index) is \(tensor.values[index]), expected a finite number")
            }
        }
    }

    // MARK: Writing

    /// The file's bytes, laid out as the reference implementation lays them out: tensors sorted by
    /// element type, widest first (I64 before F32, which keeps every tensor aligned to its element),
    /// then by name, `__metadata__` first in the header
    /// (keys sorted, omitted when empty), compact JSON, padded with spaces to a multiple of 8 bytes.
    /// Throws when a tensor's values do not match its shape, a name is duplicated or reserved.
    public func serialized(path: String = "<memory>") throws -> [UInt8] {
        let ordered = tensors.sorted {
            $0.dtype.byteCount != $1.dtype.byteCount
                ? $0.dtype.byteCount > $1.dtype.byteCount : $0.name.utf8.lexicographicallyPrecedes($1.name.utf8)
        }
        var names = Set<String>()
        for tensor in ordered {
            guard tensor.name != "__metadata__" else {
                throw SafetensorsError(path: path, tensor: tensor.name, reason: "'__metadata__' is reserved and cannot name a tensor")
            }
            guard names.insert(tensor.name).inserted else {
                throw SafetensorsError(path: path, tensor: tensor.name, reason: "duplicate tensor name")
            }
            var count = 1
            for dim in tensor.shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dim)
                guard dim >= 0, !overflow else {
                    throw SafetensorsError(path: path, tensor: tensor.name, reason: "invalid shape \(tensor.shape)")
                }
                count = product
            }
            guard count == tensor.values.count else {
                throw SafetensorsError(path: path, tensor: tensor.name, reason: "shape \(tensor.shape) holds \(count) values but the tensor has \(tensor.values.count)")
            }
            if tensor.dtype == .i64, let index = tensor.values.firstIndex(where: { $0 != $0.rounded() || abs($0) > 0x1p62 }) {
                throw SafetensorsError(path: path, tensor: tensor.name, reason: "element \(index) is \(tensor.values[index]), not an integer an I64 tensor can hold")
            }
        }

        var header = "{"
        var first = true
        if !metadata.isEmpty {
            header += jsonString("__metadata__") + ":{"
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            header += keys.map { jsonString($0) + ":" + jsonString(metadata[$0] ?? "") }.joined(separator: ",")
            header += "}"
            first = false
        }
        var offset = 0
        for tensor in ordered {
            if !first { header += "," }
            first = false
            let end = offset + tensor.values.count * tensor.dtype.byteCount
            header += jsonString(tensor.name) + ":{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":["
                + tensor.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        // Padding keeps the data region 8-byte aligned so readers can map it in place.
        headerBytes.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - headerBytes.count % 8) % 8))

        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + offset)
        let length = UInt64(headerBytes.count)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(i)))) }
        out.append(contentsOf: headerBytes)
        for tensor in ordered {
            if tensor.dtype == .i64 {
                for value in tensor.values {
                    let bits = UInt64(bitPattern: Int64(value))
                    for byte in 0..<8 { out.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(byte)))) }
                }
                continue
            }
            for value in tensor.values {
                let bits = value.bitPattern
                out.append(UInt8(truncatingIfNeeded: bits))
                out.append(UInt8(truncatingIfNeeded: bits >> 8))
                out.append(UInt8(truncatingIfNeeded: bits >> 16))
                out.append(UInt8(truncatingIfNeeded: bits >> 24))
            }
        }
        return out
    }

    /// Writes the file atomically: readers see the old file or the complete new one.
    public func write(to path: String) throws {
        try writeFileAtomically(serialized(path: path), to: path)
    }
}

/// A JSON string literal escaped as serde_json escapes it (quote, backslash and control
/// characters; everything else, including non-ASCII, as raw UTF-8).
private func jsonString(_ text: String) -> String {
    // Byte by byte over the UTF-8: only ASCII bytes are ever escaped, and the bytes of a multi-byte
    // character pass through whole. (Appending scalar by scalar made a checkpoint's header, whose
    // metrics grow by an epoch each time, a visible share of a long run's time.)
    var out: [UInt8] = [UInt8(ascii: "\"")]
    out.reserveCapacity(text.utf8.count + 2)
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
        case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
        case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
        case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
        case UInt8(ascii: "\t"): out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
        case 0x08: out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
        case 0x0C: out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
        case 0..<0x20:
            let hex = Array("0123456789abcdef".utf8)
            out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
        default: out.append(byte)
        }
    }
    out.append(UInt8(ascii: "\""))
    return String(decoding: out, as: UTF8.self)
}
