import ArgumentParser
import Foundation
import Execution
import DataSources
import Files
import Figures
import Runtime

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Draw one image of a dataset in the terminal, with its label.",
        discussion: """
            Exit status: 0 drawn; 1 the data is unusable (including dataset files missing from the directory); \
            2 unusable arguments (such as an index out of range), or a directory that does not exist or is not a directory.
            """
    )

    @Argument(help: "The dataset directory (IDX files, plain or .gz).")
    var dataDir: String

    @Option(parsing: .unconditional, help: "The image to draw (0-based).")
    var index: Int

    @Flag(help: "Take the image from the training set (default: the test set).")
    var train = false

    @Option(help: "blocks (Unicode half blocks in gray, the default on a terminal) or ascii (shades; the default otherwise).")
    var style: TerminalImageStyle?

    func validate() throws {
        if index < 0 { throw ValidationError("--index \(index) is negative") }
        if dataDir.isEmpty { throw ValidationError("the dataset directory is an empty path") }
    }

    func run() throws {
        // The argument itself must be a directory; what is (or is not) inside it is the data's problem.
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dataDir, isDirectory: &isDirectory) else {
            throw CommandFailure.usage("\(dataDir): no such directory")
        }
        guard isDirectory.boolValue else {
            throw CommandFailure.usage("\(dataDir) is not a directory (give the dataset directory holding the IDX files)")
        }
        let images: LabeledImages
        do {
            images = try loadDatasetSplit(directory: dataDir, split: train ? .train : .test)
        } catch {
            throw CommandFailure.invalid("mlpc: error: \(error)")
        }
        guard index < images.count else {
            throw CommandFailure.usage(
                "--index \(index) is out of range: \(images.imagesPath) holds \(images.count) images (0...\(images.count - 1))")
        }
        let size = images.imageSize
        let chosen = style ?? (isatty(1) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil ? .blocks : .ascii)
        print("\(train ? "training" : "test") image \(index) of \(images.imagesPath): label \(images.labels[index])")
        print(terminalImage(pixels: images.image(at: index), width: size.width, height: size.height, style: chosen), terminator: "")
    }
}

extension TerminalImageStyle: ExpressibleByArgument {}
