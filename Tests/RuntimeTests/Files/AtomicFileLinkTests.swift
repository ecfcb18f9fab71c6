import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// `writeFileAtomically` never writes through a link: its temporary file is always a new regular file
/// created in the folder's descriptor, and the rename replaces whatever is at the final name.
final class AtomicFileLinkTests: XCTestCase {
    var root = ""
    var victim: String { root + "/victim.txt" }
    let victimText = "the user's file\n"

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory(self, "mlpc-atomic-links")
        try victimText.write(toFile: victim, atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/out", withIntermediateDirectories: true)
    }

    override func tearDown() {
        AtomicFileNames.randomSuffix = { UInt64.random(in: .min ... .max) }
        AtomicFileNames.beforeRename = nil
    }

    func kind(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & S_IFMT : nil
    }

    func assertVictimUntouched(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), victimText, "written through a link", file: file, line: line)
    }

    /// A link at the final name is replaced by the new regular file; its target is not written.
    func testALinkAtTheFinalNameIsReplacedNotWrittenThrough() throws {
        for name in RunDirectory.runFiles {
            let path = root + "/out/" + name
            XCTAssertEqual(symlink(victim, path), 0)
            try writeFileAtomically("new \(name)", to: path)
            XCTAssertEqual(kind(path), S_IFREG, name)
            XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "new \(name)")
        }
        assertVictimUntouched()
        // A dangling link at the final name: its target is not created.
        XCTAssertEqual(symlink(root + "/created-through-link", root + "/out/dangling"), 0)
        try writeFileAtomically("x", to: root + "/out/dangling")
        XCTAssertNil(kind(root + "/created-through-link"))
        XCTAssertEqual(kind(root + "/out/dangling"), S_IFREG)
    }

    /// The temporary names carry a random part: a link at the name `.NAME.tmp-PID` of older versions is
    /// never used, and a name that is taken (a link planted at exactly the name drawn) is not followed:
    /// another random name is drawn.
    func testATakenTemporaryNameIsNeverFollowed() throws {
        let path = root + "/out/weights.safetensors"
        XCTAssertEqual(symlink(victim, root + "/out/.weights.safetensors.tmp-\(getpid())"), 0)
        var draws: [UInt64] = [7, 7, 8]
        AtomicFileNames.randomSuffix = { draws.removeFirst() }
        let planted = root + "/out/" + AtomicFileNames.temporaryName(for: "weights.safetensors", pid: getpid(), suffix: 7)
        XCTAssertEqual(symlink(victim, planted), 0)
        try writeFileAtomically("weights", to: path)
        assertVictimUntouched()
        XCTAssertEqual(draws, [], "the taken name was not retried")
        XCTAssertEqual(kind(planted), S_IFLNK, "the planted link was touched")
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "weights")
        XCTAssertEqual(kind(path), S_IFREG)
    }

    /// Every name taken: the write fails, and nothing is written through any of them.
    func testEveryTemporaryNameTakenFailsTheWrite() throws {
        AtomicFileNames.randomSuffix = { 9 }
        let planted = root + "/out/" + AtomicFileNames.temporaryName(for: "run.json", pid: getpid(), suffix: 9)
        XCTAssertEqual(symlink(victim, planted), 0)
        XCTAssertThrowsError(try writeFileAtomically("{}", to: root + "/out/run.json")) { error in
            XCTAssertTrue("\(error)".contains("run.json"), "\(error)")
        }
        assertVictimUntouched()
        XCTAssertNil(kind(root + "/out/run.json"))
    }

    /// A temporary swapped for a link between its creation and the rename: the write fails (the entry at
    /// the final name is not the file written), and the link's target is not written.
    func testATemporarySwappedForALinkFailsTheWrite() throws {
        AtomicFileNames.beforeRename = { dfd, name in
            unlinkat(dfd, name, 0)
            symlinkat(self.victim, dfd, name)
        }
        XCTAssertThrowsError(try writeFileAtomically("checkpoint", to: root + "/out/checkpoint.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("replaced by something else"), "\(error)")
        }
        assertVictimUntouched()
    }

    /// The files of a claimed run directory are created through the descriptor opened when it was
    /// claimed: a path swapped for a link to elsewhere afterwards does not redirect them.
    func testRunFilesGoIntoTheDirectoryThatWasClaimed() throws {
        let path = root + "/run"
        let elsewhere = root + "/elsewhere"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        let claim = try RunDirectory(path: path, mode: .fresh)
        try claim.beginRun()
        XCTAssertEqual(rename(path, root + "/moved"), 0)
        XCTAssertEqual(symlink(elsewhere, path), 0)
        try writeFileAtomically("{}", to: path + "/run.json")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: elsewhere), [])
        XCTAssertEqual(try String(contentsOfFile: root + "/moved/run.json", encoding: .utf8), "{}")
        withExtendedLifetime(claim) {}
    }

    func testTemporaryNamesAreRecognisedExactly() {
        let files = RunDirectory.runFiles
        XCTAssertEqual(AtomicFileNames.writerPID(ofTemporary: ".run.json.tmp-42", bases: files), 42)
        XCTAssertEqual(AtomicFileNames.writerPID(ofTemporary: ".run.json.tmp-42-00000000000000ff", bases: files), 42)
        for name in [
            ".thesis.tex.tmp-42", ".run.json.tmp-", ".run.json.tmp-42x", ".run.json.tmp-042", ".run.json.tmp-42-ff",
            ".run.json.tmp-42-00000000000000ff-1", "run.json.tmp-42", ".run.json.tmp--42", ".run.json.tmp-99999999999",
        ] {
            XCTAssertNil(AtomicFileNames.writerPID(ofTemporary: name, bases: files), name)
        }
    }
}
