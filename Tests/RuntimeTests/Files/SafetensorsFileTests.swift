import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class SafetensorsFileTests: XCTestCase {
    private let path = "model.safetensors"

    /// A file with a hand-written header (its length taken from the header unless `declaredLength`).
    private func file(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
        let headerBytes = Array(header.utf8)
        let length = declaredLength ?? UInt64(headerBytes.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + headerBytes + data
    }

    private func floatBytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { value -> [UInt8] in
            let bits = value.bitPattern
            return [UInt8(bits & 0xFF), UInt8((bits >> 8) & 0xFF), UInt8((bits >> 16) & 0xFF), UInt8(bits >> 24)]
        }
    }

    private func parseError(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> SafetensorsError? {
        do {
            _ = try SafetensorsFile.parse(bytes: bytes, path: path)
            XCTFail("expected a SafetensorsError", file: file, line: line)
            return nil
        } catch let error as SafetensorsError {
            XCTAssertEqual(error.path, path, file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix(path), file: file, line: line)
            return error
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return nil
        }
    }

    private var sample: SafetensorsFile {
        SafetensorsFile(
            tensors: [
                SafetensorsTensor(name: "layers.1.weight", shape: [3, 2], values: [1, -2, 3.5, 0, 1e-30, -7]),
                SafetensorsTensor(name: "layers.0.bias", shape: [2], values: [0.25, -0.125]),
                SafetensorsTensor(name: "scalar", shape: [], values: [42]),
            ],
            metadata: ["format": "mlpc", "spec": "mnist \"mlp\"\nline 2"])
    }

    // MARK: Writing

    func testRoundTripKeepsTensorsSortedByNameAndMetadata() throws {
        let parsed = try SafetensorsFile.parse(bytes: try sample.serialized(), path: path)
        XCTAssertEqual(parsed.tensors.map(\.name), ["layers.0.bias", "layers.1.weight", "scalar"])
        XCTAssertEqual(parsed.metadata, sample.metadata)
        for tensor in sample.tensors {
            XCTAssertEqual(parsed.tensor(named: tensor.name), tensor)
        }
    }

    func testWriteThenReadFromDisk() throws {
        let directory = try makeTemporaryDirectory(self, "mlpc-files")
        let target = directory + "/weights.safetensors"
        try sample.write(to: target)
        let read = try SafetensorsFile.read(path: target)
        XCTAssertEqual(read.tensors.count, 3)
        XCTAssertEqual(read.metadata["format"], "mlpc")
    }

    func testSerializedTensorMatchesReferenceImplementationBytes() throws {
        // The reference implementation's own test vector (safetensors/src/tensor.rs,
        // test_serialization_forced_alignement): header padded with 7 spaces to 72 bytes.
        let tensor = SafetensorsTensor(name: "attn0", shape: [1, 1, 2, 3], values: [0, 1, 2, 3, 4, 5])
        let expected =
            [72, 0, 0, 0, 0, 0, 0, 0] + Array(#"{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}"#.utf8)
            + [UInt8](repeating: 32, count: 7)
            + [0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64]
        XCTAssertEqual(try SafetensorsFile(tensors: [tensor]).serialized(), expected)
    }

    func testSerializedMetadataMatchesReferenceImplementationBytes() throws {
        // Reference test_empty: metadata only, 35-byte header padded to 40.
        let expected = [40, 0, 0, 0, 0, 0, 0, 0] + Array(#"{"__metadata__":{"framework":"pt"}}"#.utf8) + [32, 32, 32, 32, 32]
        XCTAssertEqual(try SafetensorsFile(tensors: [], metadata: ["framework": "pt"]).serialized(), expected)
        XCTAssertEqual(try SafetensorsFile(tensors: []).serialized(), [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])
    }

    func testPythonJSONAndStructReadTheWrittenLayout() throws {
        let directory = try makeTemporaryDirectory(self, "mlpc-files")
        let target = directory + "/weights.safetensors"
        try sample.write(to: target)
        let script = #"""
import json, struct, sys
data = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', data[:8])
assert n % 8 == 0, 'header not padded to 8'
header = json.loads(data[8:8 + n])
meta = header.pop('__metadata__')
base = 8 + n
end = 0
out = []
for name, info in sorted(header.items(), key=lambda kv: kv[1]['data_offsets']):
    b, e = info['data_offsets']
    assert b == end, 'not contiguous'
    end = e
    count = (e - b) // 4
    values = struct.unpack('<%df' % count, data[base + b:base + e])
    out.append([name, info['dtype'], info['shape'], list(values)])
assert base + end == len(data), 'data not covered'
print(json.dumps({'meta': meta, 'tensors': out}))
"""#
        let result = try FileFixtures.runPython(script, arguments: [target])
        XCTAssertEqual(result.status, 0, result.error)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        XCTAssertEqual(json["meta"] as? [String: String], sample.metadata)
        let tensors = try XCTUnwrap(json["tensors"] as? [[Any]])
        XCTAssertEqual(tensors.compactMap { $0.first as? String }, ["layers.0.bias", "layers.1.weight", "scalar"])
        XCTAssertEqual(tensors.compactMap { $0[1] as? String }, ["F32", "F32", "F32"])
        XCTAssertEqual(tensors[1][2] as? [Int], [3, 2])
        XCTAssertEqual((tensors[1][3] as? [Double])?.map { Float($0) }, [1, -2, 3.5, 0, 1e-30, -7])
        XCTAssertEqual(tensors[2][2] as? [Int], [])
    }

    func testSerializingRejectsValuesThatDoNotMatchTheShape() {
        let bad = SafetensorsFile(tensors: [SafetensorsTensor(name: "w", shape: [2, 3], values: [1, 2])])
        XCTAssertThrowsError(try bad.serialized(path: "out.safetensors")) { error in
            XCTAssertEqual((error as? SafetensorsError)?.tensor, "w")
        }
    }

    func testSerializingRejectsDuplicateNames() {
        let bad = SafetensorsFile(tensors: [
            SafetensorsTensor(name: "w", shape: [1], values: [1]), SafetensorsTensor(name: "w", shape: [1], values: [2]),
        ])
        XCTAssertThrowsError(try bad.serialized()) { error in
            XCTAssertTrue(String(describing: error).contains("duplicate"))
        }
    }

    // MARK: Reading corrupt files

    func testFileShorterThanEightBytes() {
        let error = parseError([1, 0, 0])
        XCTAssertEqual(error?.offset, 0)
        XCTAssertTrue(error?.reason.contains("shorter than") ?? false)
    }

    func testHeaderLengthPastEndOfFile() {
        let error = parseError(file(header: "{}", data: [], declaredLength: 64))
        XCTAssertTrue(error?.reason.contains("past the end") ?? false, "\(String(describing: error))")
    }

    func testAbsurdHeaderLength() {
        let error = parseError(file(header: "{}", data: [], declaredLength: 200_000_000))
        XCTAssertTrue(error?.reason.contains("limit") ?? false)
        let huge = parseError(file(header: "{}", data: [], declaredLength: UInt64.max))
        XCTAssertNotNil(huge)
    }

    func testInvalidJSONNamesTheByteOffset() {
        let error = parseError(file(header: #"{"w": {"dtype": "F32",, }}"#, data: []))
        XCTAssertTrue(error?.reason.contains("not valid JSON") ?? false)
        XCTAssertEqual(error?.offset, 8 + 22)
    }

    func testHeaderThatIsNotAnObject() {
        let error = parseError(file(header: "[1, 2]", data: []))
        XCTAssertTrue(error?.reason.contains("expected an object") ?? false)
    }

    func testHeaderThatIsNotUTF8() {
        let error = parseError([4, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0xFF, 0xFE, 0x7D])
        XCTAssertTrue(error?.reason.contains("UTF-8") ?? false)
    }

    func testMissingKeyNamesTheTensor() {
        let error = parseError(file(header: #"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, data: floatBytes([1])))
        XCTAssertEqual(error?.tensor, "w")
        XCTAssertTrue(error?.reason.contains("missing key 'shape'") ?? false)
    }

    // MARK: I64 (counts)

    func testI64TensorsGoFirstAsEightByteLittleEndianIntegersAndReadBack() throws {
        let file = SafetensorsFile(tensors: [
            SafetensorsTensor(name: "a.weight", shape: [2], values: [1.5, -2]),
            SafetensorsTensor(name: "bn.num_batches_tracked", shape: [], values: [16_777_216], dtype: .i64),
        ])
        let bytes = try file.serialized()
        let header = #"{"bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"a.weight":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
        let padding = (8 - header.utf8.count % 8) % 8
        let expected = (0..<8).map { UInt8(truncatingIfNeeded: (header.utf8.count + padding) >> (8 * $0)) } + Array(header.utf8)
            + [UInt8](repeating: 32, count: padding) + [0, 0, 0, 1, 0, 0, 0, 0] + floatBytes([1.5, -2])
        XCTAssertEqual(bytes, expected)
        let parsed = try SafetensorsFile.parse(bytes: bytes, path: path)
        XCTAssertEqual(parsed.tensor(named: "bn.num_batches_tracked"), file.tensors[1])
        XCTAssertEqual(parsed.tensor(named: "a.weight")?.dtype, .f32)
    }

    func testNegativeI64IsReadAndAnI64ThatIsNotAnIntegerIsNotWritten() throws {
        let bytes = file(header: #"{"n":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: [0xFE] + [UInt8](repeating: 0xFF, count: 7))
        XCTAssertEqual(try SafetensorsFile.parse(bytes: bytes, path: path).tensor(named: "n")?.values, [-2])
        let error = parseError(file(header: #"{"n":{"dtype":"I64","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        XCTAssertTrue(error?.reason.contains("1 I64 values (8 bytes)") ?? false, error?.reason ?? "")
        XCTAssertThrowsError(try SafetensorsFile(tensors: [SafetensorsTensor(name: "n", shape: [1], values: [0.5], dtype: .i64)]).serialized())
    }

    func testOtherDtypeIsRejectedNamingTheTensor() {
        let error = parseError(file(header: #"{"emb":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        XCTAssertEqual(error?.tensor, "emb")
        XCTAssertTrue(error?.reason.contains("F16") ?? false)
        XCTAssertEqual(error?.offset, 8 + Array(#"{"emb":{"dtype":"#.utf8).count)
    }

    func testShapeThatDisagreesWithOffsets() {
        let error = parseError(file(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: floatBytes([1, 2])))
        XCTAssertEqual(error?.tensor, "w")
        XCTAssertTrue(error?.reason.contains("span 8 bytes") ?? false)
    }

    func testShapeWithNegativeOrFractionalDimension() {
        XCTAssertNotNil(parseError(file(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: floatBytes([1]))))
        XCTAssertNotNil(parseError(file(header: #"{"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#, data: floatBytes([1]))))
    }

    func testShapeProductThatOverflows() {
        let header = #"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}}"#
        let error = parseError(file(header: header, data: floatBytes([1])))
        XCTAssertEqual(error?.tensor, "w")
    }

    func testOffsetsPastTheEndOfTheData() {
        let error = parseError(file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: floatBytes([1])))
        XCTAssertEqual(error?.tensor, "w")
        XCTAssertTrue(error?.reason.contains("past the end of the data region") ?? false)
    }

    func testOffsetsThatEndBeforeTheyBegin() {
        let error = parseError(file(header: #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, data: floatBytes([1])))
        XCTAssertTrue(error?.reason.contains("end before they begin") ?? false)
    }

    func testOverlappingTensors() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let error = parseError(file(header: header, data: floatBytes([1, 2, 3])))
        XCTAssertEqual(error?.tensor, "b")
        XCTAssertTrue(error?.reason.contains("overlap tensor 'a'") ?? false)
    }

    func testGapBetweenTensors() {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        let error = parseError(file(header: header, data: floatBytes([1, 2, 3])))
        XCTAssertEqual(error?.tensor, "b")
        XCTAssertTrue(error?.reason.contains("covered by no tensor") ?? false)
    }

    func testTrailingBytesNotCoveredByAnyTensor() {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let bytes = file(header: header, data: floatBytes([1, 2]))
        let error = parseError(bytes)
        XCTAssertTrue(error?.reason.contains("cover 4 bytes") ?? false)
        XCTAssertEqual(error?.offset, bytes.count - 4)
    }

    func testDuplicateTensorNames() {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        let error = parseError(file(header: header, data: floatBytes([1, 2])))
        XCTAssertEqual(error?.tensor, "a")
        XCTAssertTrue(error?.reason.contains("duplicate") ?? false)
    }

    func testMetadataMustMapStringsToStrings() {
        let header = #"{"__metadata__":{"epochs":3},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let error = parseError(file(header: header, data: floatBytes([1])))
        XCTAssertTrue(error?.reason.contains("expected a string") ?? false)
    }

    func testEscapedNamesAndPaddingAreRead() throws {
        let header = #"{"a\u00e9\"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}   "#
        let parsed = try SafetensorsFile.parse(bytes: file(header: header, data: floatBytes([3])), path: path)
        XCTAssertEqual(parsed.tensors.first?.name, "a\u{e9}\"b")
        XCTAssertEqual(parsed.tensors.first?.values, [3])
    }

    func testEveryTruncationAndByteFlipFailsCleanly() throws {
        let bytes = try sample.serialized()
        for length in 0..<bytes.count {
            XCTAssertThrowsError(try SafetensorsFile.parse(bytes: Array(bytes[0..<length]), path: path))
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var damaged = bytes
            let index = Int.random(in: 0..<damaged.count, using: &generator)
            damaged[index] = UInt8.random(in: 0...255, using: &generator)
            // Either a valid file (a flipped data byte) or an error; never a crash.
            _ = try? SafetensorsFile.parse(bytes: damaged, path: path)
        }
    }

    // MARK: Finite values

    func testRequireFiniteNamesTensorAndElement() {
        let model = SafetensorsFile(tensors: [
            SafetensorsTensor(name: "a", shape: [2], values: [1, 2]),
            SafetensorsTensor(name: "b", shape: [2, 2], values: [0, 1, .nan, .infinity]),
        ])
        XCTAssertThrowsError(try model.requireFinite(path: path)) { error in
            let error = error as? SafetensorsError
            XCTAssertEqual(error?.tensor, "b")
            XCTAssertTrue(error?.reason.contains("element 2") ?? false)
        }
        XCTAssertNoThrow(try SafetensorsFile(tensors: [model.tensors[0]]).requireFinite(path: path))
    }

    func testReadingAMissingFileNamesThePath() {
        XCTAssertThrowsError(try SafetensorsFile.read(path: "/nonexistent/dir/w.safetensors")) { error in
            XCTAssertTrue(String(describing: error).hasPrefix("/nonexistent/dir/w.safetensors"))
        }
    }
}
