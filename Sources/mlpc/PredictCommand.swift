import ArgumentParser
import Foundation
import Runtime

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Classify PNG images (any size, gray or colour) or test-set images with a trained model; prints the class and the probabilities.",
        discussion: """
            A picture is made gray, inverted when its border is light (a dark digit on paper; MNIST digits are white on black), \
            and resized to the model's input.
            Exit status: 0 classified, 1 the model, a picture or the data is unusable, 2 unusable arguments.
            """
    )

    @OptionGroup var options: ModelOptions

    @Argument(help: "PNG images to classify.")
    var inputs: [String] = []

    @Option(name: .customLong("index"), help: "Classify test image N (0-based; repeatable).")
    var indices: [Int] = []

    @Option(help: "Invert pictures: auto (when the border is light), always or never.")
    var invert: Inversion = .auto

    enum Inversion: String, ExpressibleByArgument, CaseIterable {
        case auto, always, never
        var policy: InversionPolicy {
            switch self {
            case .auto: return .whenBorderIsLight
            case .always: return .always
            case .never: return .never
            }
        }
    }

    func validate() throws {
        if inputs.isEmpty && indices.isEmpty { throw ValidationError("give PNG images to classify, or --index N for a test image") }
        if let negative = indices.first(where: { $0 < 0 }) { throw ValidationError("--index \(negative) is negative") }
    }

    func run() throws {
        let loaded = try options.load()
        let size = loaded.inputImageSize
        // Read every picture before printing anything, so a bad one fails the command cleanly.
        var pictures: [(String, [UInt8])] = []
        for input in inputs {
            do {
                let image = try readPNG(path: input, as: .rgb)
                pictures.append((input, modelInputImage(from: image, width: size.width, height: size.height, inversion: invert.policy).pixels))
            } catch {
                throw CommandFailure.invalid("mlpc: error: \(error)")
            }
        }
        var tests: [(String, [UInt8], Int)] = []
        if !indices.isEmpty {
            let test = try options.testSet(of: loaded)
            for index in indices {
                guard index < test.count else {
                    throw CommandFailure.usage("--index \(index) is out of range: \(test.imagesPath) holds \(test.count) test images (0...\(test.count - 1))")
                }
                tests.append(("test image \(index)", test.image(at: index), Int(test.labels[index])))
            }
        }
        for (name, pixels) in pictures {
            print(try describe(name, loaded.classify(pixels: pixels), truth: nil))
        }
        for (name, pixels, truth) in tests {
            print(try describe(name, loaded.classify(pixels: pixels), truth: truth))
        }
    }

    func describe(_ name: String, _ scores: ClassScores, truth: Int?) -> String {
        var out = "\(name): \(scores.predicted)"
        if let truth { out += " (true: \(truth))" }
        out += "\n"
        for (c, p) in scores.probabilities.enumerated() {
            let bar = String(repeating: "#", count: Int((Double(p) * 40).rounded()))
            out += String(format: "  %2d: %.4f ", c, Double(p)) + bar + "\n"
        }
        return out
    }
}
