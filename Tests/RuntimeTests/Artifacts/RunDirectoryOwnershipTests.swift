import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// What a claim may touch: the lock only when it is a regular file of its own, stale temporaries only
/// when they are provably a dead mlpc's, run files only when mlpc's own record says they are a run's.
final class RunDirectoryOwnershipTests: XCTestCase {
    var root = ""
    var victim: String { root + "/victim.txt" }
    let victimText = "the user's file\n"
    /// Above any pid_max: no process has it.
    let deadPID = 999_999_999

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory(self, "mlpc-run-ownership")
        try victimText.write(toFile: victim, atomically: false, encoding: .utf8)
    }

    func names(_ path: String) throws -> Set<String> { Set(try FileManager.default.contentsOfDirectory(atPath: path)) }

    func kind(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & S_IFMT : nil
    }

    func makeDirectory(_ name: String) throws -> String {
        let path = root + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try "keep\n".write(toFile: path + "/notes.txt", atomically: false, encoding: .utf8)
        return path
    }

    // MARK: the lock

    /// A lock that is not a regular file of its own is refused, naming it; its target is not written or
    /// created, and nothing else in the directory changes.
    func testALockThatIsNotARegularFileIsRefused() throws {
        let cases: [(String, (String) -> Void, String)] = [
            ("link", { XCTAssertEqual(symlink(self.victim, $0), 0) }, "a symbolic link"),
            ("dangling", { XCTAssertEqual(symlink(self.root + "/made-through-link", $0), 0) }, "a symbolic link"),
            ("directory", { XCTAssertEqual(mkdir($0, 0o755), 0) }, "a directory"),
            ("fifo", { XCTAssertEqual(mkfifo($0, 0o644), 0) }, "a FIFO"),
            ("hardlink", { XCTAssertEqual(link(self.victim, $0), 0) }, "a file with other hard links"),
        ]
        for (label, plant, what) in cases {
            let path = try makeDirectory(label)
            try "user temporary\n".write(toFile: path + "/.thesis.tex.tmp-42", atomically: false, encoding: .utf8)
            plant(path + "/.mlpc.lock")
            let before = try names(path)
            for mode in [RunDirectory.Mode.fresh, .overwrite, .resume] {
                XCTAssertThrowsError(try RunDirectory(path: path, mode: mode), label) { error in
                    XCTAssertTrue("\(error)".contains(path + "/.mlpc.lock is " + what), "\(label): \(error)")
                }
            }
            XCTAssertEqual(try names(path), before, label)
            XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), victimText, label)
            XCTAssertNil(kind(root + "/made-through-link"), label)
        }
    }

    // MARK: stale temporaries

    /// In a directory that holds no mlpc run, nothing is removed, not even a name like mlpc's own.
    func testNoTemporaryIsRemovedFromADirectoryWithoutARun() throws {
        let path = try makeDirectory("mine")
        let kept = [".thesis.tex.tmp-42", ".run.json.tmp-\(deadPID)", ".weights.safetensors.tmp-\(deadPID)-0123456789abcdef"]
        for name in kept { try "mine\n".write(toFile: path + "/" + name, atomically: false, encoding: .utf8) }
        let claim = try RunDirectory(path: path, mode: .fresh)
        try claim.beginRun()
        let left = try names(path)
        XCTAssertTrue(left.isSuperset(of: Set(kept + ["notes.txt"])), "\(left)")
    }

    /// In a run's directory only a dead mlpc's temporaries of the run's own files, regular files, go.
    func testOnlyADeadWritersTemporariesOfRunFilesAreRemoved() throws {
        let path = try makeDirectory("run")
        try runRecordJSON().write(toFile: path + "/run.json", atomically: false, encoding: .utf8)
        XCTAssertTrue(FileManager.default.createFile(atPath: path + "/checkpoint.safetensors", contents: Data(checkpointBytes())))
        let stale = [".checkpoint.safetensors.tmp-\(deadPID)", ".run.json.tmp-\(deadPID)-0123456789abcdef"]
        let kept = [
            ".thesis.tex.tmp-42", ".thesis.tex.tmp-\(deadPID)", ".notes.txt.tmp-\(deadPID)",
            ".metrics.jsonl.tmp-1",  // pid 1 is alive
            ".spec.yaml.tmp-\(getpid())",  // this process is alive
            ".run.json.tmp-\(deadPID).bak", ".run.json.tmp-\(deadPID)-xyz",
        ]
        for name in stale + kept { try "x\n".write(toFile: path + "/" + name, atomically: false, encoding: .utf8) }
        XCTAssertEqual(symlink(victim, path + "/.weights.safetensors.tmp-\(deadPID)"), 0)
        XCTAssertEqual(mkdir(path + "/.model.safetensors.tmp-\(deadPID)", 0o755), 0)
        let claim = try RunDirectory(path: path, mode: .resume)
        try claim.beginRun()
        let left = try names(path)
        for name in stale { XCTAssertFalse(left.contains(name), name) }
        for name in kept + [".weights.safetensors.tmp-\(deadPID)", ".model.safetensors.tmp-\(deadPID)", "notes.txt"] {
            XCTAssertTrue(left.contains(name), name)
        }
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), victimText)
    }

    // MARK: whose files

    /// A user's own files at run names (here a hand-written spec.yaml) are not a run: the refusal names
    /// them and does not advise --overwrite, and --overwrite is refused too, leaving them.
    func testForeignFilesAreNotTakenForARun() throws {
        let path = try makeDirectory("project")
        try "name: mine\n".write(toFile: path + "/spec.yaml", atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try RunDirectory(path: path, mode: .fresh)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("not an mlpc run's (spec.yaml: not written by mlpc"), text)
            XCTAssertFalse(text.contains("--overwrite"), text)
            XCTAssertFalse(text.contains("--resume"), text)
        }
        XCTAssertThrowsError(try RunDirectory(path: path, mode: .overwrite)) { error in
            XCTAssertTrue("\(error)".contains("spec.yaml"), "\(error)")
            XCTAssertTrue("\(error)".contains("nothing was removed"), "\(error)")
        }
        XCTAssertEqual(try String(contentsOfFile: path + "/spec.yaml", encoding: .utf8), "name: mine\n")
    }

    /// A run.json or checkpoint that mlpc did not write is no record of a run.
    func testOnlyMLPCsOwnRecordMakesARun() throws {
        let path = try makeDirectory("fake")
        try "{}\n".write(toFile: path + "/run.json", atomically: false, encoding: .utf8)
        XCTAssertTrue(FileManager.default.createFile(atPath: path + "/checkpoint.safetensors", contents: Data(try safetensorsBytes(format: "other"))))
        XCTAssertThrowsError(try RunDirectory(path: path, mode: .overwrite)) { error in
            XCTAssertTrue("\(error)".contains("run.json: not mlpc's run record"), "\(error)")
            XCTAssertTrue("\(error)".contains("checkpoint.safetensors: not an mlpc checkpoint"), "\(error)")
        }
        XCTAssertEqual(try names(path), ["notes.txt", "run.json", "checkpoint.safetensors"])
        // With mlpc's record it is a run.
        try runRecordJSON().write(toFile: path + "/run.json", atomically: false, encoding: .utf8)
        XCTAssertTrue(FileManager.default.createFile(atPath: path + "/checkpoint.safetensors", contents: Data(checkpointBytes())))
        XCTAssertThrowsError(try RunDirectory(path: path, mode: .fresh)) { error in
            XCTAssertTrue("\(error)".contains("already holds a run"), "\(error)")
        }
    }

    /// In a run's directory, a spec.yaml that is not the run's copy (its hash is not the record's), a
    /// link or a directory at a run name is not the run's: --overwrite is refused before anything goes.
    func testOverwriteReplacesOnlyTheRunsOwnFiles() throws {
        let spec = "name: tiny\n"
        for (label, plant) in [
            ("spec", { (path: String) in try "name: mine\n".write(toFile: path + "/spec.yaml", atomically: false, encoding: .utf8) }),
            ("link", { (path: String) in XCTAssertEqual(symlink(self.victim, path + "/metrics.jsonl"), 0) }),
            ("directory", { (path: String) in XCTAssertEqual(mkdir(path + "/confusion.png", 0o755), 0) }),
        ] as [(String, (String) throws -> Void)] {
            let path = try makeDirectory(label)
            try runRecordJSON(specSHA256: SHA256.hash(Array(spec.utf8)).hex).write(toFile: path + "/run.json", atomically: false, encoding: .utf8)
            XCTAssertTrue(FileManager.default.createFile(atPath: path + "/weights.safetensors", contents: Data("w".utf8)))
            XCTAssertTrue(FileManager.default.createFile(atPath: path + "/model.safetensors", contents: Data(modelBytes())))
            if label != "spec" { try spec.write(toFile: path + "/spec.yaml", atomically: false, encoding: .utf8) }
            try plant(path)
            let before = try names(path)
            XCTAssertThrowsError(try RunDirectory(path: path, mode: .overwrite), label) { error in
                XCTAssertTrue("\(error)".contains("not the old run's"), "\(label): \(error)")
                XCTAssertTrue("\(error)".contains("nothing was removed"), "\(label): \(error)")
            }
            XCTAssertThrowsError(try RunDirectory(path: path, mode: .fresh), label) { error in
                XCTAssertFalse("\(error)".contains("--overwrite"), "\(label): \(error)")
            }
            XCTAssertEqual(try names(path), before, label)
            XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), victimText)
        }
    }

    /// Something planted at a run name after the claim (while the data loads) is found when the run
    /// begins, before anything is removed.
    func testOverwriteChecksAgainWhenTheRunBegins() throws {
        let path = try makeDirectory("late")
        try runRecordJSON().write(toFile: path + "/run.json", atomically: false, encoding: .utf8)
        XCTAssertTrue(FileManager.default.createFile(atPath: path + "/weights.safetensors", contents: Data("w".utf8)))
        let claim = try RunDirectory(path: path, mode: .overwrite)
        XCTAssertEqual(mkdir(path + "/samples.png", 0o755), 0)
        XCTAssertThrowsError(try claim.beginRun()) { error in
            XCTAssertTrue("\(error)".contains("samples.png: a directory"), "\(error)")
        }
        XCTAssertTrue(try names(path).isSuperset(of: ["run.json", "weights.safetensors", "samples.png"]))
    }
}
