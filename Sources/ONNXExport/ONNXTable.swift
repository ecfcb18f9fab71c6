import Foundation
import SpecParser

/// What the input of a model trained on a CSV table is: the preprocessing recorded in
/// model.safetensors' metadata (`mlpc run` made it from the training split). The exported graph takes
/// the encoded feature vector (`columns` in order, each at its offset) and standardizes the number
/// columns itself; a regressor's outputs are turned back into the target's units inside the graph.
public struct ONNXTable: Sendable, Equatable {
    public struct Column: Sendable, Equatable {
        public var name: String
        public var type: ColumnType
        /// A number's standardization, (x - mean) / std.
        public var mean: Double
        public var std: Double
        /// A category's values in one-hot order; the column after the last is the unseen-value bucket.
        public var vocabulary: [String]
        /// How an empty cell is filled (`error`, `mean`, `mode`, `constant`, `drop_row`), and the value.
        public var missing: String
        public var fill: String?
        /// The first input column it writes, and how many (1, or the vocabulary plus the bucket).
        public var offset: Int
        public var width: Int

        public init(
            name: String, type: ColumnType, mean: Double, std: Double, vocabulary: [String], missing: String, fill: String?, offset: Int,
            width: Int
        ) {
            self.name = name
            self.type = type
            self.mean = mean
            self.std = std
            self.vocabulary = vocabulary
            self.missing = missing
            self.fill = fill
            self.offset = offset
            self.width = width
        }
    }

    public var columns: [Column]
    /// Input values per row after one-hot encoding.
    public var width: Int
    public var targetColumns: [String]
    /// A classifier's class names (output j is class j); empty for a regressor.
    public var classNames: [String]
    /// A regressor trains on standardized targets; its predictions are outputs * std + mean.
    public var targetMeans: [Double]
    public var targetStds: [Double]

    public var isClassifier: Bool { !classNames.isEmpty }

    public init(
        columns: [Column], width: Int, targetColumns: [String], classNames: [String], targetMeans: [Double], targetStds: [Double]
    ) {
        self.columns = columns
        self.width = width
        self.targetColumns = targetColumns
        self.classNames = classNames
        self.targetMeans = targetMeans
        self.targetStds = targetStds
    }

    /// The per-column subtrahend and divisor of the graph's standardization: a number column's mean
    /// and std (as float32), 0 and 1 for binary and one-hot columns, which pass unchanged.
    var standardization: (means: [Float], stds: [Float]) {
        var means = [Float](repeating: 0, count: width), stds = [Float](repeating: 1, count: width)
        for column in columns where column.type == .number {
            means[column.offset] = Float(column.mean)
            stds[column.offset] = Float(column.std)
        }
        return (means, stds)
    }

    /// One line per input column range: "column 0: 'age', number: the raw value; the graph computes (x - 38.5) / 12.1".
    var columnDescriptions: [String] {
        columns.map { column in
            let range = column.width == 1 ? "column \(column.offset)" : "columns \(column.offset)-\(column.offset + column.width - 1)"
            var text: String
            switch column.type {
            case .number:
                text = "\(range): '\(column.name)', number: the raw value (the graph standardizes it: (x - \(column.mean)) / \(column.std))"
            case .binary:
                text = "\(range): '\(column.name)', binary: 1 for 1/true/yes/y/t, 0 for 0/false/no/n/f (any case)"
            case .category:
                let values = column.vocabulary.enumerated().map { "\(column.offset + $0.offset) '\($0.element)'" }
                text =
                    "\(range): '\(column.name)', category, one-hot: "
                    + (values + ["\(column.offset + column.width - 1) any value training did not see"]).joined(separator: ", ")
                    + "; exactly one of these columns is 1, the others 0"
            }
            switch column.missing {
            case "error": break
            case "drop_row": text += "; mlpc predicts no row with an empty cell here (missing: drop_row)"
            default: text += "; an empty cell is given \(column.fill.map { "'\($0)'" } ?? "the fill value") (missing: \(column.missing))"
            }
            return text
        }
    }

    /// The same, for programs: a JSON array of {name, type, offset, width, mean, std, categories, missing, fill}.
    var columnsJSON: String {
        struct Entry: Encodable {
            var name: String
            var type: String
            var offset: Int
            var width: Int
            var mean: Double?
            var std: Double?
            var categories: [String]?
            var unseen_column: Int?
            var missing: String
            var fill: String?
        }
        let entries = columns.map { column in
            Entry(
                name: column.name, type: column.type.rawValue, offset: column.offset, width: column.width,
                mean: column.type == .number ? column.mean : nil, std: column.type == .number ? column.std : nil,
                categories: column.type == .category ? column.vocabulary : nil,
                unseen_column: column.type == .category ? column.offset + column.width - 1 : nil, missing: column.missing, fill: column.fill)
        }
        return jsonText(entries)
    }
}

func jsonText<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
}
