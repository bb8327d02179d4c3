import Foundation

/// What a table's target asks for.
public enum TableTask: String, Codable, Sendable, CaseIterable {
    /// Predict one of the target's classes: softmax outputs, one per class.
    case classification
    /// Predict the target's value: one linear output.
    case regression
}

/// How a table's columns become a network's inputs and targets: the feature columns (numeric, or text one-hot
/// encoded over its categories), the target column and its task (with its classes), and the standardisation
/// learnt from the training split. Saved with a model (``json``) so that evaluation and prediction read a new
/// file exactly as training read its own.
public struct TableSchema: Codable, Sendable, Equatable {
    /// A feature column: a number, or a text whose categories each get an input (one-hot).
    public struct Feature: Codable, Sendable, Equatable {
        /// The column's name in the header.
        public var name: String
        /// The categories of a text column, in the order of its one-hot inputs; `nil` for a numeric column.
        public var categories: [String]?
        /// How many inputs the column gives.
        public var width: Int { categories?.count ?? 1 }
    }

    /// The feature columns, in input order.
    public var features: [Feature]
    /// The target column's name.
    public var target: String
    /// Classification or regression.
    public var task: TableTask
    /// The class names (classification), in output order: text sorted, integers sorted by value.
    public var classes: [String]
    /// The standardisation of the inputs (and of a regression target), once computed from a training split.
    public var standardization: Standardization?

    /// The number of network inputs (one per numeric column, one per category of a text column).
    public var featureCount: Int { features.reduce(0) { $0 + $1.width } }
    /// The number of network outputs (the classes, or 1 for regression).
    public var targetWidth: Int { task == .classification ? classes.count : 1 }
    /// Which inputs are standardised: the numeric ones (one-hot inputs are left 0 or 1).
    public var standardizedInputs: [Bool] { features.flatMap { [Bool](repeating: $0.categories == nil, count: $0.width) } }

    /// The schema of `table`: its `target` column (by default the last) and every other column as a feature.
    /// The task is `task` if given, else classification when the target holds text or integers (written without
    /// a decimal point or exponent), regression otherwise.
    public init(table: Table, target: String? = nil, task: TableTask? = nil) throws(TableError) {
        let targetName = target ?? table.columns.last!.name
        guard let t = table.columnIndex(named: targetName) else {
            throw .unknownColumn(path: table.path, name: targetName, available: table.columnNames)
        }
        guard table.columns.count >= 2 else { throw .noFeatures(path: table.path) }
        let column = table.columns[t]
        let task = task ?? (column.isText || column.isInteger ? .classification : .regression)
        self.target = targetName
        self.task = task
        features = table.columns.enumerated().filter { $0.offset != t }.map { Feature(name: $0.element.name, categories: $0.element.categories) }
        if let line = column.firstMissingLine {
            throw .missingValue(path: table.path, line: line, column: targetName, columnNumber: t + 1)
        }
        switch task {
        case .regression:
            if let categories = column.categories {
                throw .textTarget(path: table.path, column: targetName, line: table.line(ofRow: 0), text: categories[Int(table[0, t])])
            }
            classes = []
        case .classification:
            if let categories = column.categories {
                classes = categories.sorted()
            } else {
                var values = Set<Float>()
                for row in 0..<table.rowCount { values.insert(table[row, t]) }
                classes = values.sorted().map(TableSchema.name(ofNumber:))
            }
            guard classes.count >= 2 else {
                throw .oneClass(path: table.path, column: targetName, value: classes.first ?? "")
            }
        }
    }

    /// The name of a class or category that a table holds as a number: `3` for 3, `0.5` for 0.5.
    static func name(ofNumber value: Float) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }

    /// The data set that `table` gives under this schema: its features in input order (one-hot for text columns)
    /// and its target (class indices into ``classes``, or values). Columns are found by name, so a file whose
    /// columns come in another order reads the same. A missing feature value is an error unless `imputeMissing`
    /// is true, in which case it stays `NaN` (a missing text cell: `NaN` in each of its one-hot inputs) for
    /// ``Dataset/standardized(by:)`` to fill with the training split's mean (for one-hot inputs, each category's
    /// share); a missing target, text where a number belongs, or a category or class the schema does not know is
    /// always an error.
    public func dataset(from table: Table, imputeMissing: Bool = false) throws(TableError) -> Dataset {
        let features = try featureValues(from: table, imputeMissing: imputeMissing)
        guard let t = table.columnIndex(named: target) else {
            throw .unknownColumn(path: table.path, name: target, available: table.columnNames)
        }
        let column = table.columns[t]
        if let line = column.firstMissingLine {
            throw .missingValue(path: table.path, line: line, column: target, columnNumber: t + 1)
        }
        let stride = table.columns.count
        switch task {
        case .regression:
            if let categories = column.categories {
                throw .textTarget(path: table.path, column: target, line: table.line(ofRow: 0), text: categories[Int(table[0, t])])
            }
            let values = table.cells.withUnsafeBufferPointer { cells in (0..<table.rowCount).map { cells[$0 * stride + t] } }
            return Dataset(features: .floats(features), targets: .values(values, width: 1), count: table.rowCount,
                           featureCount: featureCount, targetWidth: 1)
        case .classification:
            var index: [String: Int32] = [:]
            for (i, name) in classes.enumerated() { index[name] = Int32(i) }
            // Each distinct cell value is named and looked up once.
            let names = column.categories
            var byValue: [Float: Int32] = [:]
            var labels = [Int32](repeating: 0, count: table.rowCount)
            for row in 0..<table.rowCount {
                let value = table.cells[row * stride + t]
                if let label = byValue[value] { labels[row] = label; continue }
                let name = names.map { $0[Int(value)] } ?? TableSchema.name(ofNumber: value)
                guard let label = index[name] else {
                    throw .unknownCategory(path: table.path, line: table.line(ofRow: row), column: target, columnNumber: t + 1, text: name)
                }
                byValue[value] = label
                labels[row] = label
            }
            return Dataset(features: .floats(features), targets: .labels(labels), count: table.rowCount,
                           featureCount: featureCount, targetWidth: classes.count)
        }
    }

    /// The inputs (`rowCount × featureCount`, row-major, before standardisation) that `table` gives under this
    /// schema; the target column need not be there (for prediction). Errors as ``dataset(from:imputeMissing:)``.
    public func featureValues(from table: Table, imputeMissing: Bool = false) throws(TableError) -> [Float] {
        let stride = table.columns.count, width = featureCount, rows = table.rowCount
        var result = [Float](repeating: 0, count: rows * width)
        var numericSources: [Int] = [], numericDestinations: [Int] = []
        var offset = 0
        for feature in features {
            guard let c = table.columnIndex(named: feature.name) else {
                throw .unknownColumn(path: table.path, name: feature.name, available: table.columnNames)
            }
            let column = table.columns[c]
            if let line = column.firstMissingLine, !imputeMissing {
                throw .missingValue(path: table.path, line: line, column: feature.name, columnNumber: c + 1)
            }
            if let categories = feature.categories {
                try oneHot(column: c, categories: categories, table: table, into: &result, offset: offset)
            } else {
                if let categories = column.categories {  // text where the model needs numbers: name the first
                    let row = (0..<rows).first { !table[$0, c].isNaN } ?? 0
                    throw .notANumber(path: table.path, line: table.line(ofRow: row), column: feature.name, columnNumber: c + 1,
                                      text: table[row, c].isNaN ? "" : categories[Int(table[row, c])])
                }
                numericSources.append(c)
                numericDestinations.append(offset)
            }
            offset += feature.width
        }
        // The numeric columns, row by row: both arrays are read and written in order.
        table.cells.withUnsafeBufferPointer { cells in
            result.withUnsafeMutableBufferPointer { out in
                numericSources.withUnsafeBufferPointer { sources in
                    numericDestinations.withUnsafeBufferPointer { destinations in
                        for row in 0..<rows {
                            let from = cells.baseAddress! + row * stride, to = out.baseAddress! + row * width
                            for k in 0..<sources.count { to[destinations[k]] = from[sources[k]] }
                        }
                    }
                }
            }
        }
        return result
    }

    /// Writes the one-hot inputs of text column `c` (row-major, `featureCount` wide) at input `offset` onwards; a
    /// missing cell (`NaN`, let through only when imputing) makes all of them `NaN`.
    private func oneHot(column c: Int, categories: [String], table: Table, into result: inout [Float],
                        offset: Int) throws(TableError) {
        let column = table.columns[c], stride = table.columns.count, width = featureCount
        var index: [String: Int] = [:]
        for (i, name) in categories.enumerated() { index[name] = i }
        var byValue: [Float: Int] = [:]  // each distinct cell is named and looked up once
        for row in 0..<table.rowCount {
            let value = table.cells[row * stride + c]
            if value.isNaN {
                for k in 0..<categories.count { result[row * width + offset + k] = .nan }
                continue
            }
            let k: Int
            if let known = byValue[value] { k = known } else {
                let name = column.categories.map { $0[Int(value)] } ?? TableSchema.name(ofNumber: value)
                guard let found = index[name] else {
                    throw .unknownCategory(path: table.path, line: table.line(ofRow: row), column: column.name,
                                           columnNumber: c + 1, text: name)
                }
                byValue[value] = found
                k = found
            }
            result[row * width + offset + k] = 1
        }
    }

    /// Why this schema, read from a saved model, cannot drive a network of `inputs` inputs and `outputs` outputs (a
    /// phrase to follow the model's path), or `nil` if it can: its inputs and outputs must be the network's, and its
    /// standardisation must have a finite mean and a positive finite scale per input (and, for regression, per
    /// output; a classification target has none).
    public func inconsistency(inputs: Int, outputs: Int) -> String? {
        if let s = standardization {
            let values = s.featureMeans + s.featureScales + (s.targetMeans ?? []) + (s.targetScales ?? []) + (s.featureFills ?? [])
            let targets = s.targetMeans?.count ?? 0
            guard s.featureMeans.count == featureCount, s.featureScales.count == featureCount, targets == (s.targetScales?.count ?? 0),
                  (s.featureFills?.count ?? featureCount) == featureCount,
                  targets == 0 || (task == .regression && targets == targetWidth), values.allSatisfy(\.isFinite),
                  (s.featureScales + (s.targetScales ?? [])).allSatisfy({ $0 > 0 }) else {
                return "its table standardization is damaged (\(s.featureMeans.count) means, \(s.featureScales.count) scales and \(s.featureFills.map { "\($0.count) fills" } ?? "no fills") for \(featureCount) features, \(targets) for \(task == .regression ? targetWidth : 0) targets; every value must be finite and every scale positive)"
            }
        }
        guard featureCount == inputs && targetWidth == outputs else {
            return "its table schema (\(featureCount) inputs, \(targetWidth) outputs) does not fit its network (\(inputs), \(outputs))"
        }
        return nil
    }

    /// The schema as one line of JSON (for a saved model's metadata).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// The schema that ``json`` wrote, or `nil` if `json` is not one.
    public init?(json: String) {
        guard let schema = try? JSONDecoder().decode(TableSchema.self, from: Data(json.utf8)) else { return nil }
        self = schema
    }
}

extension Dataset {
    /// The data set that `table` gives: its `target` column (by default the last) as classes or values (see
    /// ``TableSchema/init(table:target:task:)``), every other column as features (text one-hot encoded), with
    /// the schema that describes them. Throws on missing values (see ``TableSchema/dataset(from:imputeMissing:)``).
    public static func from(_ table: Table, target: String? = nil, task: TableTask? = nil,
                            imputeMissing: Bool = false) throws(TableError) -> (data: Dataset, schema: TableSchema) {
        let schema = try TableSchema(table: table, target: target, task: task)
        return (try schema.dataset(from: table, imputeMissing: imputeMissing), schema)
    }
}
