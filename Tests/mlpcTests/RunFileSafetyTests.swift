import Foundation
import XCTest

/// `mlpc run` against a run directory someone else can write into, or that holds the user's own files:
/// no write goes through a link, no user file is removed or replaced, and --overwrite replaces a
/// previous run whole or not at all.
final class RunFileSafetyTests: XCTestCase {
    var root = ""
    var specPath: String { root + "/tiny.yaml" }
    var data: String { root + "/data" }
    var victim: String { root + "/victim.txt" }
    let victimText = "the user's file\n"

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory(self, "mlpc-run-files")
        try TinyDataset.write(to: data)
        try writeFile(specPath, TinyDataset.spec(epochs: 2))
        try writeFile(victim, victimText)
    }

    static let runFiles = [
        "run.json", "metrics.jsonl", "spec.yaml", "checkpoint.safetensors", "weights.safetensors", "model.safetensors",
        "samples.png", "predictions.png", "curves.png", "confusion.png",
    ]

    func run(_ out: String, _ extra: [String] = [], spec: String? = nil) throws -> CommandResult {
        let result = try MLPCProcess.run(["run", spec ?? specPath, "--data-dir", data, "--out", out, "--quiet"] + extra)
        assertNoCrash(result)
        return result
    }

    func kind(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & S_IFMT : nil
    }

    func names(_ path: String) throws -> Set<String> { Set(try FileManager.default.contentsOfDirectory(atPath: path)) }

    /// Every file of the directory with its bytes (links as their target's path).
    func snapshot(_ path: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try names(path) {
            let full = path + "/" + name
            switch kind(full) {
            case S_IFLNK: files[name] = Data(((try? FileManager.default.destinationOfSymbolicLink(atPath: full)) ?? "?").utf8)
            case S_IFREG: files[name] = FileManager.default.contents(atPath: full)
            default: files[name] = Data("(\(kind(full) ?? 0))".utf8)
            }
        }
        return files
    }

    func assertVictimUntouched(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), victimText, "written through a link", file: file, line: line)
    }

    // MARK: links

    /// A lock that is a link (to a user file, or dangling), a directory or a FIFO: refused with exit 2,
    /// naming it; nothing is written through it and nothing else in the directory changes.
    func testALockThatIsNotARegularFileIsRefused() throws {
        for (label, plant) in [
            ("link", { XCTAssertEqual(symlink(self.victim, $0), 0) }),
            ("dangling", { XCTAssertEqual(symlink(self.root + "/made-through-link", $0), 0) }),
            ("directory", { XCTAssertEqual(mkdir($0, 0o755), 0) }),
            ("fifo", { XCTAssertEqual(mkfifo($0, 0o644), 0) }),
        ] as [(String, (String) -> Void)] {
            let out = root + "/" + label
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try writeFile(out + "/notes.txt", "mine\n")
            try writeFile(out + "/.thesis.tex.tmp-42", "mine\n")
            plant(out + "/.mlpc.lock")
            let before = try snapshot(out)
            let result = try run(out)
            XCTAssertEqual(result.status, 2, "\(label): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(out + "/.mlpc.lock"), "\(label): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("not mlpc's lock file"), "\(label): \(result.stderr)")
            XCTAssertEqual(try snapshot(out), before, label)
            assertVictimUntouched()
            XCTAssertNil(kind(root + "/made-through-link"), "\(label): the dangling link's target was created")
        }
    }

    /// Links planted at every name a run writes, before it starts: the directory is not taken for a run,
    /// and neither a new run nor --overwrite writes through or removes them.
    func testLinksAtEveryRunFileNameAreNeverWrittenThrough() throws {
        let out = root + "/planted"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for name in Self.runFiles { XCTAssertEqual(symlink(victim, out + "/" + name), 0) }
        let before = try snapshot(out)
        for extra in [[], ["--overwrite"]] {
            let result = try run(out, extra)
            XCTAssertEqual(result.status, 2, "\(extra): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("run.json: a symbolic link"), result.stderr)
            XCTAssertTrue(result.stderr.contains("confusion.png: a symbolic link"), result.stderr)
            XCTAssertEqual(try snapshot(out).filter { $0.key != ".mlpc.lock" }, before, "\(extra)")
        }
        assertVictimUntouched()
    }

    /// Links planted while a run goes, again and again: at the temporary names older versions used
    /// (`.NAME.tmp-PID`), and at every final name that has no file yet. Nothing is written through
    /// any of them, and the run completes.
    func testLinksPlantedDuringARunAreNeverWrittenThrough() throws {
        let out = root + "/racing"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let (child, stdout, stderr) = try ArtifactCLI.process(
            ["run", specPath, "--data-dir", data, "--out", out, "--epochs", "3", "--quiet"])
        try child.run()
        let pid = child.processIdentifier
        // Set by this thread, read by the planter: behind a lock.
        final class Stop: @unchecked Sendable {
            private let lock = NSLock()
            private var value = false
            var flag: Bool {
                get { lock.withLock { value } }
                set { lock.withLock { value = newValue } }
            }
        }
        let stop = Stop()
        let planter = Thread {
            while !stop.flag {
                // From the moment the run has begun (its record is there): before, links at run names
                // would rightly make the directory foreign.
                var record = stat()
                guard lstat(out + "/run.json", &record) == 0, record.st_mode & S_IFMT == S_IFREG else {
                    usleep(200)
                    continue
                }
                for name in Self.runFiles {
                    symlink(self.victim, out + "/.\(name).tmp-\(pid)")
                    let path = out + "/" + name
                    var info = stat()
                    // Only where nothing is yet, or where an earlier link was replaced: never a file of the run.
                    if lstat(path, &info) != 0 { symlink(self.victim, path) }
                }
                usleep(200)
            }
        }
        planter.start()
        let result = ArtifactCLI.finish(child, stdout, stderr)
        stop.flag = true
        usleep(5_000)
        XCTAssertEqual(result.status, 0, result.error)
        assertVictimUntouched()
        for name in Self.runFiles {
            XCTAssertEqual(kind(out + "/" + name), S_IFREG, "\(name) is not the run's regular file")
        }
    }

    /// --out may itself be a link to a directory (the user named it): the run goes into its target.
    func testAnOutputDirectoryNamedThroughALinkIsFollowed() throws {
        let target = root + "/target"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        XCTAssertEqual(symlink(target, root + "/alias"), 0)
        let result = try run(root + "/alias", ["--epochs", "1"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(kind(target + "/weights.safetensors"), S_IFREG)
        XCTAssertEqual(kind(root + "/alias"), S_IFLNK)
    }

    // MARK: cleanup

    /// The user's dot-files, even ones named like mlpc's temporaries, stay in a directory without a run;
    /// in a run's directory only a dead writer's temporaries of run files go.
    func testCleanupLeavesTheUsersFilesAlone() throws {
        let out = root + "/project"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let mine = [".thesis.tex.tmp-42", ".notes.tmp-1", ".run.json.tmp-999999999"]
        for name in mine { try writeFile(out + "/" + name, "mine\n") }
        XCTAssertEqual(try run(out, ["--epochs", "1"]).status, 0)
        let kept = try names(out)
        XCTAssertTrue(kept.isSuperset(of: mine), "\(kept)")

        // The run is there now: resuming it removes a dead mlpc's temporary of a run file, and only that.
        try writeFile(out + "/.checkpoint.safetensors.tmp-999999999", "stale\n")
        XCTAssertEqual(symlink(victim, out + "/.weights.safetensors.tmp-999999998"), 0)
        let resumed = try MLPCProcess.run(["run", "--resume", out, "--epochs", "2", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let left = try names(out)
        XCTAssertFalse(left.contains(".checkpoint.safetensors.tmp-999999999"))
        XCTAssertTrue(left.contains(".weights.safetensors.tmp-999999998"), "a link was removed")
        XCTAssertTrue(left.isSuperset(of: [".thesis.tex.tmp-42", ".notes.tmp-1"]), "\(left)")
        assertVictimUntouched()
    }

    // MARK: whose files

    /// `mlpc run proj/spec.yaml --out proj`: the user's own spec is no run. The refusal names it and
    /// does not advise --overwrite; --overwrite is refused as well, and the spec stays as written.
    func testTheUsersOwnSpecIsNotTakenForARun() throws {
        let project = root + "/proj"
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
        let text = try String(contentsOfFile: specPath, encoding: .utf8) + "# my notes\n"
        try writeFile(project + "/spec.yaml", text)
        let refused = try run(project, spec: project + "/spec.yaml")
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("not an mlpc run's (spec.yaml: not written by mlpc"), refused.stderr)
        XCTAssertFalse(refused.stderr.contains("--overwrite"), refused.stderr)
        XCTAssertFalse(refused.stderr.contains("stopped before its first checkpoint"), refused.stderr)
        let overwrite = try run(project, ["--overwrite"], spec: project + "/spec.yaml")
        XCTAssertEqual(overwrite.status, 2, overwrite.stderr)
        XCTAssertTrue(overwrite.stderr.contains("spec.yaml"), overwrite.stderr)
        XCTAssertEqual(try String(contentsOfFile: project + "/spec.yaml", encoding: .utf8), text)
    }

    /// --overwrite checks that it can replace every file before it removes one: a directory at a run
    /// file's name, or a user's spec.yaml in place of the run's copy, leaves the old run whole.
    func testOverwriteReplacesARunWholeOrNotAtAll() throws {
        let out = root + "/run"
        XCTAssertEqual(try run(out, ["--epochs", "1"]).status, 0)
        try FileManager.default.removeItem(atPath: out + "/confusion.png")
        XCTAssertEqual(mkdir(out + "/confusion.png", 0o755), 0)
        let before = try snapshot(out)
        let refused = try run(out, ["--overwrite"])
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("confusion.png: a directory"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("nothing was removed"), refused.stderr)
        XCTAssertEqual(try snapshot(out).filter { $0.key != ".mlpc.lock" }, before.filter { $0.key != ".mlpc.lock" })

        XCTAssertEqual(rmdir(out + "/confusion.png"), 0)
        try writeFile(out + "/spec.yaml", "name: mine\n")
        let spec = try run(out, ["--overwrite"])
        XCTAssertEqual(spec.status, 2, spec.stderr)
        XCTAssertTrue(spec.stderr.contains("spec.yaml: not the run's copy of its spec"), spec.stderr)
        XCTAssertEqual(try String(contentsOfFile: out + "/spec.yaml", encoding: .utf8), "name: mine\n")
        XCTAssertEqual(kind(out + "/run.json"), S_IFREG)
        XCTAssertEqual(kind(out + "/model.safetensors"), S_IFREG)

        // The run's own files only: --overwrite replaces them.
        try FileManager.default.removeItem(atPath: out + "/spec.yaml")
        XCTAssertEqual(try run(out, ["--overwrite", "--epochs", "1"]).status, 0)
    }
}
