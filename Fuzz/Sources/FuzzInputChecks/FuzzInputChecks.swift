import Foundation
import KernelInterface
import Planner
import Runtime
import Files
import DataSources
import SpecParser

// What each fuzz target does with one input, shared by the libFuzzer entry points (Fuzz/Sources/Fuzz*)
// and by the regression test that replays Fuzz/regressions/ (Tests/mlpcTests links this same file).
// A crash (trap, out-of-bounds access, sanitizer report) is the main finding; beyond that each check
// returns the promises the reader broke on this input (empty when it behaved), so that the fuzzer
// can stop on them and the test can name them.

public enum FuzzInputChecks {
    /// The spec front end: parse and decode, render the diagnostics, and plan a spec that decoded.
    public static func spec(_ bytes: [UInt8]) -> [String] {
        let path = "fuzz.yaml"
        let loaded = SpecLoader.parse(bytes: bytes, path: path, dataDirectoryOverride: "fuzz-data")
        var broken: [String] = []
        if let fileError = loaded.fileError {
            if bytes.count <= SpecLoader.maximumFileSize { broken.append("file error for in-memory bytes: \(fileError)") }
            return broken
        }
        if loaded.spec == nil && !loaded.diagnostics.hasErrors { broken.append("no spec and no error diagnostic") }
        if loaded.spec != nil && loaded.diagnostics.hasErrors { broken.append("a spec despite error diagnostics") }
        guard let source = loaded.source else { return broken + ["no source file for a parsed input"] }
        let lastLine = max(1, source.lineCount) + 1
        for diagnostic in loaded.diagnostics {
            if diagnostic.code.isEmpty || diagnostic.message.isEmpty { broken.append("diagnostic without code or message") }
            let locations = [diagnostic.location] + diagnostic.notes.map(\.location)
            for case let location? in locations
            where location.line < 1 || location.column < 1 || location.line > lastLine {
                broken.append("diagnostic \(diagnostic.code) at \(location) is outside the \(source.lineCount)-line file")
            }
        }
        let text = DiagnosticRenderer.text(loaded.diagnostics, sources: [path: source], color: false)
        if !loaded.diagnostics.isEmpty && text.isEmpty { broken.append("diagnostics rendered as empty text") }
        let json = DiagnosticRenderer.json(loaded.diagnostics)
        if (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [Any] == nil {
            broken.append("diagnostics JSON is not a JSON array")
        }
        guard let spec = loaded.spec else { return broken }

        // A fixed machine, so a finding reproduces anywhere.
        let target = Target(
            isa: .portable, threads: 2, l2Bytes: 1024 * 1024, memoryBytes: 64 << 30, cpuName: "fuzz")
        let (plan, planDiagnostics) = makePlan(spec, target: target)
        if plan == nil && !planDiagnostics.hasErrors { broken.append("no plan and no error diagnostic") }
        guard let plan, !planDiagnostics.hasErrors else { return broken }
        broken += verify(plan).map { "plan violates: \($0)" }
        _ = PlanText.summary(plan)
        _ = PlanText.full(plan)
        _ = PlanText.dot(plan)
        if (try? JSONSerialization.jsonObject(with: Data(PlanText.json(plan).utf8))) == nil {
            broken.append("plan JSON does not parse")
        }
        return broken
    }

    /// The safetensors reader: parse; a file that parses must serialize and parse back to itself.
    public static func safetensors(_ bytes: [UInt8]) -> [String] {
        let path = "fuzz.safetensors"
        let file: SafetensorsFile
        do {
            file = try SafetensorsFile.parse(bytes: bytes, path: path)
        } catch let error as SafetensorsError {
            var broken: [String] = []
            if error.path != path { broken.append("error names \(error.path), not \(path)") }
            if let offset = error.offset, offset < 0 || offset > bytes.count {
                broken.append("error offset \(offset) outside the \(bytes.count)-byte input")
            }
            return broken
        } catch {
            return ["parse threw a \(type(of: error)), not a SafetensorsError: \(error)"]
        }
        let again: SafetensorsFile
        do {
            again = try SafetensorsFile.parse(bytes: try file.serialized(path: path), path: path)
        } catch {
            return ["a file that parsed does not round-trip: \(error)"]
        }
        guard again.metadata == file.metadata, again.tensors.count == file.tensors.count else {
            return ["round trip changed the metadata or the tensor count"]
        }
        // The writer may order tensors differently (by name, or by offset); compare them by name.
        for tensor in file.tensors {
            guard let copy = again.tensor(named: tensor.name) else { return ["round trip lost tensor \(tensor.name)"] }
            if copy.shape != tensor.shape || copy.values.map(\.bitPattern) != tensor.values.map(\.bitPattern) {
                return ["round trip changed tensor \(tensor.name)"]
            }
        }
        return []
    }

    /// How `idx` treats an input: its first byte picks the mode, the rest is the file.
    public enum IDXInputMode: UInt8 {
        /// The rest is a plain IDX file.
        case plain = 0
        /// The rest is written as given to a ".gz" file (exercises the gzip error paths).
        case rawGzip = 1
        /// The rest is wrapped in a valid gzip stream (stored blocks), so the IDX checks run on inflated data.
        case wrappedGzip = 2
    }

    /// Limits the data a fuzz input may make the reader allocate (the real limit is 2 GiB).
    static let fuzzDataLimit = 1 << 22

    /// The IDX reader, through files in `directory`: the header probe and the full read must agree.
    public static func idx(_ input: [UInt8], directory: String) -> [String] {
        guard let first = input.first else { return [] }
        let mode = IDXInputMode(rawValue: first % 3) ?? .plain
        let body = Array(input.dropFirst())
        let path = directory + (mode == .plain ? "/fuzz-idx3-ubyte" : "/fuzz-idx3-ubyte.gz")
        let stored = mode == .wrappedGzip ? storedGzip(body) : body
        guard FileManager.default.createFile(atPath: path, contents: Data(stored)) else {
            return ["cannot write the fuzz input to \(path)"]
        }
        defer { try? FileManager.default.removeItem(atPath: path) }

        var broken: [String] = []
        func checkError(_ error: Error, _ operation: String) {
            guard let error = error as? IDXError else {
                broken.append("\(operation) threw a \(type(of: error)), not an IDXError: \(error)")
                return
            }
            if error.path != path { broken.append("\(operation): error names \(error.path), not \(path)") }
            if !error.description.contains(path) { broken.append("\(operation): message does not name the file") }
            switch error.position {
            case .file(let offset), .compressed(let offset):
                if offset < 0 || offset > stored.count { broken.append("\(operation): offset \(offset) outside the \(stored.count)-byte file") }
            case .decompressed(let offset):
                if offset < 0 { broken.append("\(operation): negative offset") }
            case .none:
                break
            }
        }

        var header: IDXHeader?
        do {
            header = try IDXHeader.read(path: path)
        } catch {
            checkError(error, "IDXHeader.read")
        }
        do {
            let file = try IDXFile.read(path: path, maximumDataLength: fuzzDataLimit)
            if file.data.count != file.header.dataLength { broken.append("data length \(file.data.count) != \(file.header.dataLength)") }
            if header == nil { broken.append("IDXFile.read accepted a file whose header IDXHeader.read refused") }
            if let header, header.dimensions != file.dimensions { broken.append("header probe and read disagree on dimensions") }
        } catch {
            checkError(error, "IDXFile.read")
        }
        return broken
    }

    /// `bytes` as a gzip file of stored (uncompressed) deflate blocks, with a correct CRC-32 and length.
    public static func storedGzip(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]
        var start = 0
        repeat {
            let count = min(65535, bytes.count - start)
            let isLast = start + count == bytes.count
            let length = UInt16(count)
            out += [isLast ? 1 : 0, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
            out += bytes[start..<(start + count)]
            start += count
        } while start < bytes.count
        for value in [crc32(bytes), UInt32(truncatingIfNeeded: bytes.count)] {
            out += [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8(value >> 24)]
        }
        return out
    }

    /// CRC-32 (IEEE, reflected), as gzip's trailer uses.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }
}
