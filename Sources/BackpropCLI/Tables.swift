import ArgumentParser
@_spi(Internals) import Backprop
import BackpropMPI
import Foundation

extension TableTask: ExpressibleByArgument {}

/// Whether `path` names a table rather than an MNIST-format folder: a file that exists and is not a folder, or a
/// path ending in .csv, .tsv, .tab or .txt.
func isTable(_ path: String) -> Bool {
    var info = stat()
    if stat(path, &info) == 0 { return (info.st_mode & S_IFMT) != S_IFDIR }
    let lower = path.lowercased()
    return [".csv", ".tsv", ".tab", ".txt"].contains { lower.hasSuffix($0) }
}

/// A table prepared for training: the standardised training and validation sets and the schema (with its
/// standardisation) that the model is saved with.
struct PreparedTable {
    var train: Dataset
    var validation: Dataset
    var schema: TableSchema
    /// Seconds spent reading and parsing the table file (``Table/init(contentsOf:separator:)``, as pandas.read_csv).
    var readSeconds: Double
    var rowCount: Int
}

extension Train {
    /// Reads `--data` (and `--validation`), infers the schema, splits and standardises. Every table problem is a
    /// one-line error (exit 1).
    func prepareTable() throws -> PreparedTable {
        let imputes = impute == .mean
        // Resuming: the checkpoint's schema (columns, categories, standardisation) is the authority, not one inferred
        // again from the table given, which could encode the same rows differently.
        var resumedSchema: TableSchema?
        if let resume {
            let file: SafetensorsFile
            do { file = try SafetensorsFile(contentsOf: resume) } catch { throw fail(error.description) }
            guard let json = file.metadata["table"] else { throw fail("--resume \(resume) was not trained on a table") }
            guard let saved = TableSchema(json: json) else { throw fail("\(resume): its table schema (metadata 'table') cannot be read") }
            if let target, target != saved.target {
                throw fail("--target \(target) conflicts with \(resume), which was trained on target '\(saved.target)'; resume with the same settings")
            }
            // Its standardization is applied to the table before the network is read: check it against the network now.
            let network: Network
            do { network = try Checkpoint.network(from: file, path: resume).network } catch { throw fail(error.description) }
            if let problem = saved.inconsistency(inputs: network.inputSize, outputs: network.outputSize) { throw fail("\(resume): \(problem)") }
            resumedSchema = saved
        }
        do {
            var seconds = 0.0
            // The table lives only in this scope: its cells are freed once the data set is built.
            var (all, schema, rows) = try {
                () throws -> (Dataset, TableSchema, Int) in
                let clock = ContinuousClock(), start = clock.now
                let table = try Table(contentsOf: data)
                seconds = (clock.now - start).seconds
                let schema = try resumedSchema ?? TableSchema(table: table, target: target, task: task)
                return (try schema.dataset(from: table, imputeMissing: imputes), schema, table.rowCount)
            }()
            var validationSet: Dataset
            if let validation {
                validationSet = try schema.dataset(from: Table(contentsOf: validation), imputeMissing: imputes)
            } else {
                let fraction = validationFraction ?? 0.2
                let validationCount = Int((fraction * Double(all.count)).rounded(.up))
                guard validationCount < all.count else {
                    throw fail("\(data): \(all.count) row\(all.count == 1 ? "" : "s") cannot be split into training and validation rows (--validation-fraction \(fraction)); give more rows or --validation FILE")
                }
                let parts = all.split(validationFraction: fraction, seed: seed)
                all = parts.train
                validationSet = parts.validation
            }
            let standardization = resumedSchema?.standardization
                ?? Standardization(of: all, standardizes: schema.standardizedInputs, targets: schema.task == .regression)
            schema.standardization = standardization
            return PreparedTable(train: all.standardized(by: standardization),
                                 validation: validationSet.standardized(by: standardization),
                                 schema: schema, readSeconds: seconds, rowCount: rows)
        } catch let error as TableError {
            throw fail(error.description)
        }
    }

    /// `backprop train --data FILE.csv`: reads and prepares the table, sizes `auto` layers from it, and trains.
    func runTable(world: MPICommunicator?) throws {
        _ = try settings()  // flags first: a usage error should not wait for a large file
        let table = try prepareTable()
        let schema = table.schema
        if schema.task == .regression, let loss {  // (--task regression --loss is refused with the flags)
            if let resume {
                throw fail("--loss \(loss.rawValue) is for classification, but \(resume) learns the target '\(schema.target)' by regression (mean squared error); leave out --loss", rank: world)
            }
            throw fail("--loss \(loss.rawValue) is for classification, but the target '\(schema.target)' of \(data) holds numbers that are not all integers, so it is learnt by regression (mean squared error); give --task classification to take its values as classes, or leave out --loss", rank: world)
        }
        let settings = try self.settings(auto: (schema.featureCount, schema.targetWidth))
        guard settings.sizes[0] == schema.featureCount else {
            throw fail("--layers starts with \(settings.sizes[0]) inputs, but \(data) gives \(schema.featureCount) (\(schema.features.count) feature columns\(schema.features.contains { $0.categories != nil } ? ", text columns one-hot" : "")); use auto", rank: world)
        }
        guard settings.sizes.last! == schema.targetWidth else {
            throw fail("--layers ends with \(settings.sizes.last!) outputs, but \(schema.task == .classification ? "the target '\(schema.target)' has \(schema.targetWidth) classes" : "regression has 1 output"); use auto", rank: world)
        }
        try checkMemory(settings, world: world)
        try train(settings: settings, data: (table.train, table.validation), optimizer: makeOptimizer(settings), world: world,
                  table: table)
    }
}

/// A model trained on a table, with its schema; for `evaluate` and `predict`.
struct TableModel {
    let network: Network
    let metadata: [String: String]
    let schema: TableSchema

    init(path: String) throws {
        let loaded: (network: Network, metadata: [String: String])
        do { loaded = try Checkpoint.load(from: path) } catch { throw fail(error.description) }
        guard let json = loaded.metadata["table"] else {
            throw fail("\(path) was not trained on a table (its metadata has no table schema); evaluate it on an MNIST-format folder")
        }
        guard let schema = TableSchema(json: json) else { throw fail("\(path): its table schema (metadata 'table') cannot be read") }
        if let problem = schema.inconsistency(inputs: loaded.network.inputSize, outputs: loaded.network.outputSize) {
            throw fail("\(path): \(problem)")
        }
        (network, metadata, self.schema) = (loaded.network, loaded.metadata, schema)
    }

    var imputes: Bool { metadata["impute"] == "mean" }

    /// The table at `path` as a standardised data set (it must have the target column).
    func dataset(_ path: String) throws -> Dataset {
        do throws(TableError) {
            let data = try schema.dataset(from: Table(contentsOf: path), imputeMissing: imputes)
            return schema.standardization.map { data.standardized(by: $0) } ?? data
        } catch {
            throw fail(error.description)
        }
    }

    /// The network's outputs for every row of the table at `path` (which need not have the target column):
    /// probabilities (classification) or values in the target's units (regression).
    func predictions(_ path: String) throws -> Matrix {
        let inputs: Matrix
        do throws(TableError) {
            let table = try Table(contentsOf: path)
            let values = try schema.featureValues(from: table, imputeMissing: imputes)
            let data = Dataset(features: values, featureCount: schema.featureCount,
                               targets: [Float](repeating: 0, count: table.rowCount), targetWidth: 1)
            let standardized = schema.standardization.map {
                data.standardized(by: Standardization(featureMeans: $0.featureMeans, featureScales: $0.featureScales))
            } ?? data
            inputs = standardized.batch(at: 0..<standardized.count).input
        } catch {
            throw fail(error.description)
        }
        let outputs = Matrix(rows: inputs.rows, columns: network.outputSize)
        let workspace = Workspace(for: network, capacity: 256, backward: false)
        var start = 0
        while start < inputs.rows {
            let n = min(256, inputs.rows - start)
            outputs.rows(start..<(start + n)).assign(network.forward(inputs.rows(start..<(start + n)), workspace: workspace))
            start += n
        }
        if schema.task == .classification { return softmax(outputs) }
        schema.standardization?.restoreTargets(outputs)
        return outputs
    }
}

/// `text` as one CSV field: quoted (with doubled quotes) when it holds a comma, a quote or a line break.
func csvField(_ text: String) -> String {
    guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
