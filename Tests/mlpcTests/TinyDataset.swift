import Foundation

/// A tiny, learnable dataset of IDX files (6x6 images of three classes, each a bright bar in its own
/// rows over deterministic noise) and a spec that trains on it in a fraction of a second.
enum TinyDataset {
    static let side = 6
    static let classes = 3
    static let trainCount = 120
    static let testCount = trainCount / 4

    static let trainImages = "train-images-idx3-ubyte"
    static let trainLabels = "train-labels-idx1-ubyte"
    static let testImages = "t10k-images-idx3-ubyte"
    static let testLabels = "t10k-labels-idx1-ubyte"

    static func bigEndian(_ value: Int) -> [UInt8] {
        let v = UInt32(value)
        return [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    static func imagesFile(_ images: [[UInt8]]) -> [UInt8] {
        [0, 0, 8, 3] + bigEndian(images.count) + bigEndian(side) + bigEndian(side) + images.flatMap { $0 }
    }

    static func labelsFile(_ labels: [UInt8]) -> [UInt8] {
        [0, 0, 8, 1] + bigEndian(labels.count) + labels
    }

    static func image(label: Int, noise: inout UInt64) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: side * side)
        for i in pixels.indices {
            noise = noise &* 6364136223846793005 &+ 1442695040888963407
            pixels[i] = UInt8(truncatingIfNeeded: noise >> 58)
        }
        for row in (2 * label)..<(2 * label + 2) {
            for column in 0..<side { pixels[row * side + column] = 200 &+ UInt8(column * 9) }
        }
        return pixels
    }

    /// Writes the four files into `directory` (created if needed): `train` training and `train / 4` test images.
    static func write(to directory: String, train: Int = trainCount) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var noise: UInt64 = 42
        for (images, labels, count) in [(trainImages, trainLabels, train), (testImages, testLabels, train / 4)] {
            let classLabels = (0..<count).map { UInt8($0 % classes) }
            try writeFile(directory + "/" + images, bytes: imagesFile(classLabels.map { image(label: Int($0), noise: &noise) }))
            try writeFile(directory + "/" + labels, bytes: labelsFile(classLabels))
        }
    }

    /// A spec for the tiny images; `data.dir` is replaced by --data-dir in the tests.
    static func spec(optimizer: String = "{kind: adam, lr: 0.01}", epochs: Int = 2) -> String {
        """
        name: tiny
        seed: 7
        data:
          dir: unused
          normalize: {mean: 0.5, std: 0.5}
        model:
          input_shape: [1, \(side), \(side)]
          layers:
            - flatten
            - linear: {out: 16, activation: relu}
            - linear: {out: \(classes)}
        loss: cross_entropy
        optimizer: \(optimizer)
        training:
          batch_size: 16
          epochs: \(epochs)
          threads: 1

        """
    }

    /// 1-based line of the first line of `spec()` containing `text`.
    static func line(of text: String, in spec: String) -> Int? {
        spec.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(text) }.map { $0 + 1 }
    }
}
