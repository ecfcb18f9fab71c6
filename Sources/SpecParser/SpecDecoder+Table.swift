/// The `data` section of a table spec (`format: csv`).
extension SpecDecoder {
    static let tableKeys = [
        "format", "train", "test", "test_fraction", "target", "columns", "ignore", "delimiter", "header", "validation_fraction",
        "missing_values",
    ]
    static let columnKeys = ["type", "missing", "value"]
    static let targetKeys = ["column", "columns", "type"]
    static let missingChoices = ["error", "drop_row", "mean", "mode", "constant"]

    mutating func decodeTableData(_ view: MappingView) -> DataSpec? {
        checkKeys(view, allowed: SpecDecoder.tableKeys)
        let train = tablePath(view, "train", required: true)
        let test = tablePath(view, "test", required: false)
        var testFraction: Located<Double>?
        if view["test_fraction"] != nil {
            testFraction = number(view, "test_fraction", default: nil, in: NumberInterval(lower: 0, lowerInclusive: false, upper: 1, upperInclusive: false), example: "0.2")
        }
        if let test, let fraction = testFraction {
            report(.error(
                .outOfRange, "'data.test' and 'data.test_fraction' exclude each other: the test rows come from one or the other",
                at: fraction.location, notes: [DiagnosticNote("the test file is given here", at: test.location)]))
        } else if test == nil && testFraction == nil && view["test"] == nil && view["test_fraction"] == nil {
            report(.error(
                .missingKey, "'data' needs the test rows: 'test: FILE' or 'test_fraction: F' (a seeded share of the training file)",
                at: view.location, suggestion: "add 'test_fraction: 0.2'"))
        }
        let target = decodeTarget(view)
        let columns = decodeColumns(view)
        var ignore: [Located<String>] = []
        if let entry = view["ignore"] {
            if case .sequence(let items) = entry.value.content {
                ignore = items.compactMap { string($0, name: "data.ignore") }
            } else if let one = string(entry.value, name: "data.ignore") {
                ignore = [one]
            }
            if columns != nil, let first = ignore.first {
                report(.error(.outOfRange, "'data.ignore' is for when 'data.columns' is left out; 'columns' already lists the features", at: first.location))
            }
        }
        var delimiter: Located<UInt8>? = Located(UInt8(ascii: ","), at: view.location)
        if let entry = view["delimiter"] {
            if let text = string(entry.value, name: "data.delimiter") {
                let value = text.value == "\\t" ? "\t" : text.value
                if value.utf8.count == 1, let byte = value.utf8.first, byte != UInt8(ascii: "\""), byte != 0x0A, byte != 0x0D {
                    delimiter = Located(byte, at: text.location)
                } else {
                    report(.error(
                        .outOfRange, "'data.delimiter' must be one character other than a quote or a line break (',', ';', '\\t'), found \(quote(text.value))",
                        at: text.location))
                    delimiter = nil
                }
            } else {
                delimiter = nil
            }
        }
        let header = boolean(view, "header", default: true)
        var missingValues: [Located<String>] = []
        if let entry = view["missing_values"] {
            if case .sequence(let items) = entry.value.content {
                missingValues = items.compactMap { string($0, name: "data.missing_values") }
            } else if let one = string(entry.value, name: "data.missing_values") {
                missingValues = [one]
            }
            for text in missingValues where text.value.isEmpty || text.value.utf8.count > 64 {
                report(.error(.outOfRange, "a 'data.missing_values' entry must be 1 to 64 bytes (an empty cell is always missing)", at: text.location))
            }
        }
        let fraction = number(view, "validation_fraction", default: 0, in: .unitHalfOpen, example: "0.1")
        if let target, let columns {
            let targets = Set(target.columns.map(\.value))
            for column in columns where targets.contains(column.name.value) {
                report(.error(.outOfRange, "column \(quote(column.name.value)) is the target; it cannot be a feature too", at: column.name.location))
            }
        }
        guard let train, let target, let delimiter, let header, let fraction, !diagnostics.hasErrors else { return nil }
        var table = TableSpec(
            train: train, resolvedTrain: SpecDecoder.resolve(train.value, relativeTo: file), test: test,
            resolvedTest: test.map { SpecDecoder.resolve($0.value, relativeTo: file) }, testFraction: testFraction, target: target,
            columns: columns, ignore: ignore, delimiter: delimiter, header: header, location: view.location)
        table.missingValues = missingValues
        return DataSpec(
            directory: train, resolvedDirectory: table.resolvedTrain, mean: Located(0, at: view.location),
            std: Located(1, at: view.location), validationFraction: fraction, table: table, location: view.location)
    }

    private mutating func tablePath(_ view: MappingView, _ key: String, required: Bool) -> Located<String>? {
        guard let entry = view[key], !entry.value.isNull else {
            if required { reportMissing(key, in: view, example: "train.csv") }
            return nil
        }
        guard let text = string(entry.value, name: view.qualified(key)) else { return nil }
        if text.value.isEmpty || text.value.unicodeScalars.contains("\0") {
            report(.error(.outOfRange, "'\(view.qualified(key))' must be a file path (not empty, no NUL character)", at: text.location))
            return nil
        }
        return text
    }

    private mutating func columnType(_ node: YAMLNode, name: String) -> Located<ColumnType>? {
        guard let text = choice(node, name: name, what: "column type", among: ColumnType.allCases.map(\.rawValue), code: .unknownChoice) else {
            return nil
        }
        return Located(ColumnType(rawValue: text.value)!, at: text.location)
    }

    private mutating func decodeTarget(_ view: MappingView) -> TargetSpec? {
        guard let entry = view["target"], !entry.value.isNull else {
            reportMissing("target", in: view, example: "{column: species, type: category}")
            return nil
        }
        guard let target = mapping(entry.value, path: "data.target", owner: entry.key.location) else { return nil }
        checkKeys(target, allowed: SpecDecoder.targetKeys)
        var columns: [Located<String>] = []
        if let one = target["column"], let name = string(one.value, name: "data.target.column") { columns.append(name) }
        if let many = target["columns"] {
            if case .sequence(let items) = many.value.content, !items.isEmpty {
                columns += items.compactMap { string($0, name: "data.target.columns") }
            } else {
                report(.error(.wrongType, "expected a list of column names for 'data.target.columns'", at: many.value.location))
                return nil
            }
        }
        guard !columns.isEmpty else {
            report(.error(.missingKey, "'data.target' needs 'column: NAME' (or 'columns: [A, B]' for several numbers)", at: target.location))
            return nil
        }
        guard let typeEntry = target["type"] else {
            report(.error(
                .missingKey, "'data.target' needs a type: 'category' makes a classifier, 'number' a regressor", at: target.location,
                suggestion: "add 'type: category' or 'type: number'"))
            return nil
        }
        guard let type = columnType(typeEntry.value, name: "data.target.type") else { return nil }
        if type.value == .binary {
            report(.error(.outOfRange, "a target is a 'category' (classifier) or 'number' (regressor); a binary target is a category of two", at: type.location))
            return nil
        }
        if type.value == .category && columns.count > 1 {
            report(.error(.outOfRange, "a category target is one column; several target columns are numbers (a regressor)", at: columns[1].location))
            return nil
        }
        var seen = Set<String>()
        for column in columns where !seen.insert(column.value).inserted {
            report(.error(.duplicateKey, "target column \(quote(column.value)) is listed twice", at: column.location))
        }
        return TargetSpec(columns: columns, type: type, location: target.location)
    }

    /// `columns:` maps each feature column to its type, or to `{type, missing, value}`.
    private mutating func decodeColumns(_ view: MappingView) -> [ColumnSpec]? {
        guard let entry = view["columns"], !entry.value.isNull else { return nil }
        guard let columns = mapping(entry.value, path: "data.columns", owner: entry.key.location) else { return nil }
        if columns.entries.isEmpty {
            report(.error(.outOfRange, "'data.columns' lists no column; leave it out to use every column but the target as a number", at: entry.value.location))
            return nil
        }
        var result: [ColumnSpec] = []
        for column in columns.entries {
            let name = Located(column.key.value, at: column.key.location)
            let path = "data.columns.\(column.key.value)"
            if column.value.scalar != nil {
                if let type = columnType(column.value, name: path) {
                    result.append(ColumnSpec(name: name, type: type, missing: Located(.error, at: column.key.location)))
                }
                continue
            }
            guard let options = mapping(column.value, path: path, owner: column.key.location) else { continue }
            checkKeys(options, allowed: SpecDecoder.columnKeys)
            guard let typeEntry = options["type"] else {
                reportMissing("type", in: options, example: "number")
                continue
            }
            guard let type = columnType(typeEntry.value, name: "\(path).type") else { continue }
            var missing = Located(MissingValues.error, at: column.key.location)
            if let missingEntry = options["missing"],
                let choice = choice(missingEntry.value, name: "\(path).missing", what: "missing-value strategy", among: SpecDecoder.missingChoices, code: .unknownChoice)
            {
                switch choice.value {
                case "drop_row": missing = Located(.dropRow, at: choice.location)
                case "mean":
                    if type.value != .number {
                        report(.error(.outOfRange, "'missing: mean' needs a number column; \(quote(name.value)) is a \(type.value.rawValue)", at: choice.location, suggestion: "use 'mode'"))
                    }
                    missing = Located(.mean, at: choice.location)
                case "mode": missing = Located(.mode, at: choice.location)
                case "constant":
                    if let valueEntry = options["value"], let value = string(valueEntry.value, name: "\(path).value") {
                        missing = Located(.constant(value.value), at: choice.location)
                    } else {
                        report(.error(.missingKey, "'missing: constant' needs the value to fill in: 'value: ...'", at: choice.location))
                    }
                default: break
                }
            }
            if options["value"] != nil, case .constant = missing.value {} else if let valueEntry = options["value"] {
                report(.error(.outOfRange, "'value' is the fill of 'missing: constant'", at: valueEntry.key.location))
            }
            result.append(ColumnSpec(name: name, type: type, missing: missing))
        }
        return result.count == columns.entries.count ? result : nil
    }
}
