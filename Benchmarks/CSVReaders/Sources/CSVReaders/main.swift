// Times reading FILE.csv into Float cells (the header kept aside) three ways, each run `repeat` times (best kept):
// Backprop's Table, yaslab/CSV.swift 2.5.2 (CSVReader over an InputStream, Float(field) per cell) and
// swiftcsv/SwiftCSV 0.10.0 (CSV<Enumerated>, Float(field) per cell). Prints one line per reader:
// `reader seconds rows cells checksum` (the checksum, a sum of every cell, shows that all read the same numbers).
import Backprop
import CSV
import Foundation
import SwiftCSV

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    print("usage: CSVReaders FILE.csv [REPEAT] [READERS (backprop,csv.swift,swiftcsv)]")
    exit(64)
}
let path = arguments[1], repeats = arguments.count > 2 ? Int(arguments[2]) ?? 3 : 3
let readers = arguments.count > 3 ? arguments[3].split(separator: ",").map(String.init) : ["backprop", "csv.swift", "swiftcsv"]

/// Σ cells, in a plain loop (a closure in top-level code would check its actor on every call).
nonisolated func sum(_ cells: [Float]) -> Double {
    var total = 0.0
    for x in cells { total += Double(x) }
    return total
}

func time(_ name: String, _ body: () throws -> (rows: Int, cells: Int, sum: Double)) rethrows {
    var best = Double.infinity, result = (rows: 0, cells: 0, sum: 0.0)
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        result = try body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    print(String(format: "%@ %.3f %d %d %.6e", name, best, result.rows, result.cells, result.sum))
    fflush(nil)
}

for reader in readers {
    switch reader {
    case "backprop":
        try time("backprop") {
            let table = try Table(contentsOf: path)
            return (table.rowCount, table.cells.count, sum(table.cells))
        }
    case "csv.swift":
        try time("csv.swift") {
            let reader = try CSVReader(stream: InputStream(fileAtPath: path)!, hasHeaderRow: true)
            var cells: [Float] = [], rows = 0
            while let row = reader.next() {
                for field in row { cells.append(Float(field) ?? .nan) }
                rows += 1
            }
            return (rows, cells.count, sum(cells))
        }
    case "swiftcsv":
        try time("swiftcsv") {
            let csv = try CSV<Enumerated>(url: URL(fileURLWithPath: path), delimiter: .comma, loadColumns: false)
            var cells: [Float] = []
            for row in csv.rows { for field in row { cells.append(Float(field) ?? .nan) } }
            return (csv.rows.count, cells.count, sum(cells))
        }
    default:
        print("unknown reader \(reader)")
    }
}
