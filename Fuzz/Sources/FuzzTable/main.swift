import Backprop
import FuzzDriver

/// libFuzzer entry point: any bytes, as a CSV or TSV table, must read as a table or throw `TableError`; a table that
/// reads is then taken through what `backprop train` does with it (its schema, data set and standardisation, for
/// the last column and the first as target), which may throw `TableError` but never crash, trap or draw a sanitizer
/// report.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTable(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let table = try Table(bytes: bytes, path: "fuzz")
        precondition(table.cells.count == table.rowCount * table.columns.count, "Table: cells and shape disagree")
        for target in [nil, table.columns.first?.name] {
            for impute in [false, true] {
                do {
                    let (data, schema) = try Dataset.from(table, target: target, imputeMissing: impute)
                    precondition(data.featureCount == schema.featureCount && data.targetWidth == schema.targetWidth && data.count == table.rowCount,
                                 "Dataset.from: the data set and its schema disagree")
                    let standardization = Standardization(of: data, standardizes: schema.standardizedInputs, targets: schema.task == .regression)
                    let standardized = data.standardized(by: standardization)
                    if standardized.count > 0 { _ = standardized.batch(at: 0..<min(standardized.count, 8)) }
                    // The schema, saved and read back, reads the same table the same way.
                    var saved = schema
                    saved.standardization = standardization
                    let again = TableSchema(json: saved.json)
                    precondition(again != nil && again!.inconsistency(inputs: schema.featureCount, outputs: schema.targetWidth) == nil,
                                 "TableSchema: a schema made from a table does not read back consistent")
                    _ = try again!.dataset(from: table, imputeMissing: impute)
                } catch {
                    _ = error.description
                }
            }
        }
    } catch {
        _ = error.description
    }
    return 0
}

@_cdecl("FuzzTable_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzTable)  // see FuzzDriver
}
