import Foundation
import XCTest

/// The mlpc executable must not link networking libraries: loading libcurl, its TLS stack and
/// FoundationNetworking at every start made `mlpc check` slow and `mlpc run` bigger. Downloads open
/// libcurl with dlopen instead. Likewise MPI: data-parallel runs open Open MPI's libmpi under mpirun only.
final class ExecutableDependencyTests: XCTestCase {
    static let forbidden = ["curl", "FoundationNetworking", "libmpi", "open-pal", "open-rte"]

    func testExecutableLinksNoNetworkingLibrary() throws {
        let path = try MLPCProcess.binaryPath()
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.starts(with: [0x7F, 0x45, 0x4C, 0x46]) else { throw XCTSkip("\(path) is not an ELF file") }
        let needed = try ELFDynamicSection.neededLibraries(Array(data))
        // Every Swift executable on Linux needs the Swift runtime: an empty list would mean a wrong parse.
        XCTAssertTrue(needed.contains { $0.hasPrefix("libswiftCore") }, "\(needed)")
        for library in needed {
            XCTAssertFalse(Self.forbidden.contains { library.contains($0) }, "\(path) needs \(library)")
        }
    }

    func testNoLinkedLibraryPullsInANetworkingLibrary() throws {
        let path = try MLPCProcess.binaryPath()
        let ldd = "/usr/bin/ldd"
        guard FileManager.default.isExecutableFile(atPath: ldd) else { throw XCTSkip("no ldd on this system") }
        let result = try MLPCProcess.run([path], executable: ldd)
        let listing = result.stdout
        XCTAssertEqual(result.status, 0, listing + result.stderr)
        XCTAssertTrue(listing.contains("libswiftCore"), listing)
        for line in listing.split(separator: "\n") {
            XCTAssertFalse(Self.forbidden.contains { line.contains($0) }, "loaded with mlpc: \(line)")
        }
    }

    func testParserReadsTheNeededEntriesOfAHandMadeELFFile() throws {
        XCTAssertEqual(try ELFDynamicSection.neededLibraries(ELFDynamicSection.example(needing: ["liba.so.1", "libb.so"])), ["liba.so.1", "libb.so"])
        XCTAssertThrowsError(try ELFDynamicSection.neededLibraries(Array(ELFDynamicSection.example(needing: ["liba.so"]).prefix(70))))
    }
}

/// The DT_NEEDED entries of a 64-bit little-endian ELF file, read through its section headers: the
/// SHT_DYNAMIC section's entries name offsets into the string table its sh_link points at.
enum ELFDynamicSection {
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    static func neededLibraries(_ bytes: [UInt8]) throws -> [String] {
        func integer(_ offset: Int, _ size: Int) throws -> Int {
            guard offset >= 0, size <= 8, offset <= bytes.count - size else {
                throw Malformed(description: "a \(size)-byte field at byte \(offset) is past the end (\(bytes.count) bytes)")
            }
            var value: UInt64 = 0
            for index in (0..<size).reversed() { value = value << 8 | UInt64(bytes[offset + index]) }
            guard value <= UInt64(Int.max) else { throw Malformed(description: "field at byte \(offset) is too large") }
            return Int(value)
        }
        guard bytes.count >= 64, bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46]), bytes[4] == 2, bytes[5] == 1 else {
            throw Malformed(description: "not a 64-bit little-endian ELF file")
        }
        let sectionTable = try integer(0x28, 8)
        let entrySize = try integer(0x3A, 2)
        let sectionCount = try integer(0x3C, 2)
        guard entrySize >= 64 else { throw Malformed(description: "section header size \(entrySize) at byte 58 is under 64") }
        func section(_ index: Int) throws -> (type: Int, offset: Int, size: Int, link: Int) {
            let base = sectionTable + index * entrySize
            return (try integer(base + 4, 4), try integer(base + 24, 8), try integer(base + 32, 8), try integer(base + 40, 4))
        }
        var names: [String] = []
        for index in 0..<sectionCount {
            let dynamic = try section(index)
            guard dynamic.type == 6 else { continue }  // SHT_DYNAMIC
            guard dynamic.link < sectionCount else { throw Malformed(description: "dynamic section \(index) links to section \(dynamic.link)") }
            let strings = try section(dynamic.link)
            for entry in stride(from: dynamic.offset, to: dynamic.offset + dynamic.size - 15, by: 16) {
                let tag = try integer(entry, 8)
                if tag == 0 { break }  // DT_NULL
                guard tag == 1 else { continue }  // DT_NEEDED
                let start = try integer(entry + 8, 8)
                guard start < strings.size else { throw Malformed(description: "DT_NEEDED at byte \(entry) points past the string table") }
                var end = strings.offset + start
                while end < min(bytes.count, strings.offset + strings.size), bytes[end] != 0 { end += 1 }
                guard end < bytes.count else { throw Malformed(description: "unterminated name at byte \(strings.offset + start)") }
                names.append(String(decoding: bytes[(strings.offset + start)..<end], as: UTF8.self))
            }
        }
        return names
    }

    /// A minimal ELF file: header, a string table, a dynamic section needing `libraries`, and the
    /// three section headers (null, .dynstr, .dynamic).
    static func example(needing libraries: [String]) -> [UInt8] {
        func little(_ value: Int, _ size: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        var strings: [UInt8] = [0]
        var offsets: [Int] = []
        for library in libraries {
            offsets.append(strings.count)
            strings += Array(library.utf8) + [0]
        }
        var dynamic: [UInt8] = []
        for offset in offsets { dynamic += little(1, 8) + little(offset, 8) }
        dynamic += little(0, 16)
        let stringsAt = 64
        let dynamicAt = stringsAt + strings.count
        let headersAt = dynamicAt + dynamic.count
        var header = [UInt8](repeating: 0, count: 64)
        header.replaceSubrange(0..<6, with: [0x7F, 0x45, 0x4C, 0x46, 2, 1])
        header.replaceSubrange(0x28..<0x30, with: little(headersAt, 8))
        header.replaceSubrange(0x3A..<0x3C, with: little(64, 2))
        header.replaceSubrange(0x3C..<0x3E, with: little(3, 2))
        func sectionHeader(type: Int, offset: Int, size: Int, link: Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: 64)
            bytes.replaceSubrange(4..<8, with: little(type, 4))
            bytes.replaceSubrange(24..<32, with: little(offset, 8))
            bytes.replaceSubrange(32..<40, with: little(size, 8))
            bytes.replaceSubrange(40..<44, with: little(link, 4))
            return bytes
        }
        return header + strings + dynamic + sectionHeader(type: 0, offset: 0, size: 0, link: 0)
            + sectionHeader(type: 3, offset: stringsAt, size: strings.count, link: 0)
            + sectionHeader(type: 6, offset: dynamicAt, size: dynamic.count, link: 1)
    }
}
