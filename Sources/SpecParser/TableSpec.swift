/// A table of rows in a CSV file as the spec's `data` section declares it (`format: csv`): the files,
/// the target and feature columns with their types, and how missing cells are handled.
public struct TableSpec: Codable, Equatable, Sendable {
    /// The training file as written, and resolved against the spec's folder.
    public var train: Located<String>
    public var resolvedTrain: String
    /// A separate test file, or (exclusive with it) the seeded share of the training file held out as the test set.
    public var test: Located<String>?
    public var resolvedTest: String?
    public var testFraction: Located<Double>?
    public var target: TargetSpec
    /// The feature columns in the order given; nil: every column that is not a target or ignored, as numbers.
    public var columns: [ColumnSpec]?
    /// Columns left out of the features (with `columns` absent).
    public var ignore: [Located<String>]
    /// One byte (`,`, `;`, a tab).
    public var delimiter: Located<UInt8>
    /// Whether the first row names the columns; without one the columns are named 1, 2, 3, ...
    public var header: Located<Bool>
    /// Cell texts that count as missing, besides an empty cell (`missing_values: ["NA", "?"]`).
    public var missingValues: [Located<String>] = []
    public var location: SourceLocation

    public init(
        train: Located<String>, resolvedTrain: String, test: Located<String>?, resolvedTest: String?,
        testFraction: Located<Double>?, target: TargetSpec, columns: [ColumnSpec]?, ignore: [Located<String>],
        delimiter: Located<UInt8>, header: Located<Bool>, location: SourceLocation
    ) {
        self.train = train
        self.resolvedTrain = resolvedTrain
        self.test = test
        self.resolvedTest = resolvedTest
        self.testFraction = testFraction
        self.target = target
        self.columns = columns
        self.ignore = ignore
        self.delimiter = delimiter
        self.header = header
        self.location = location
    }
}

/// What a column holds; the spec says it, nothing is guessed.
public enum ColumnType: String, Codable, Equatable, Sendable, CaseIterable {
    /// A decimal number, standardized with the training split's mean and standard deviation.
    case number
    /// A value from a vocabulary (the training split's), one-hot encoded with an extra bucket for unseen values.
    case category
    /// Two values: 0/1, true/false, yes/no, y/n, t/f (any case), encoded as 0 and 1.
    case binary
}

/// What an empty cell becomes.
public enum MissingValues: Codable, Equatable, Sendable {
    /// A located error (the default).
    case error
    /// The row is left out.
    case dropRow
    /// The training split's mean (numbers).
    case mean
    /// The training split's most frequent value.
    case mode
    /// This text, read as the column's type.
    case constant(String)

    public var specName: String {
        switch self {
        case .error: return "error"
        case .dropRow: return "drop_row"
        case .mean: return "mean"
        case .mode: return "mode"
        case .constant: return "constant"
        }
    }
}

public struct ColumnSpec: Codable, Equatable, Sendable {
    public var name: Located<String>
    public var type: Located<ColumnType>
    public var missing: Located<MissingValues>

    public init(name: Located<String>, type: Located<ColumnType>, missing: Located<MissingValues>) {
        self.name = name
        self.type = type
        self.missing = missing
    }
}

/// The column (or number columns) the model predicts: a category makes a classifier, numbers a regressor.
public struct TargetSpec: Codable, Equatable, Sendable {
    public var columns: [Located<String>]
    public var type: Located<ColumnType>
    public var location: SourceLocation

    public init(columns: [Located<String>], type: Located<ColumnType>, location: SourceLocation) {
        self.columns = columns
        self.type = type
        self.location = location
    }
}
