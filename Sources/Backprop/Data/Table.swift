#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A table read from a CSV or TSV file with a header row: named columns of numbers or of text.
///
/// Every cell is kept as one `Float` in a row-major `rowCount × columnCount` array (``cells``): the number itself
/// in a numeric column, and in a text column the index of its category in ``Column/categories`` (categories
/// numbered in order of first appearance). A missing cell (empty, `NA`, `N/A`, `NaN`, `nan`, `null`) is `NaN`;
/// ``Column/firstMissingLine`` says where the first one is, so that whoever needs a value can name it.
///
/// A column's kind comes from its first value that is not missing: a number makes the column numeric, and any
/// later cell that is not a number is an error naming its line and column; anything else makes it a text column,
/// whose later numbers are categories like any other text. A number too large for a `Float` (`1e400`) is an error,
/// wherever it is.
///
/// The reader follows RFC 4180 and what spreadsheets write: fields may be quoted (`"a, b"`, with `""` for a quote
/// inside), line ends may be LF or CRLF, a UTF-8 byte-order mark is skipped, blank lines are skipped. The separator
/// is a tab for a `.tsv` or `.tab` file or a header with tabs and no commas, else a comma (or what `separator`
/// says). The file is mapped into memory (or read, for a pipe) and parsed byte by byte, numbers by a decimal parser
/// of its own (eight digits at a time, correctly rounded), in two halves on two threads when
/// ``Parallel/threadCount`` allows and no field is quoted; no `String` is made but for the header and the categories.
public struct Table: Sendable {
    /// What a column holds.
    public struct Column: Sendable, Equatable {
        /// The column's name in the header.
        public var name: String
        /// The categories of a text column (in order of first appearance), `nil` for a numeric column.
        public var categories: [String]?
        /// Whether every value of a numeric column was written as an integer (no decimal point, no exponent).
        public var isInteger: Bool
        /// The file line (the header is line 1) of the column's first missing cell, if any.
        public var firstMissingLine: Int?
        /// Whether the column holds text.
        public var isText: Bool { categories != nil }
    }

    /// The file the table was read from (or the name given for bytes).
    public let path: String
    /// The columns, in header order.
    public let columns: [Column]
    /// The number of rows (not counting the header).
    public let rowCount: Int
    /// The cells, row-major (`rowCount × columns.count`): numbers, category indices for text columns, `NaN` for
    /// missing cells.
    public let cells: [Float]
    /// The rows that start on a later line than `row + 2` (after a quoted field with a line break, or blank
    /// lines): (row, line) pairs in increasing order.
    let lineJumps: [(row: Int, line: Int)]

    /// The column names, in header order.
    public var columnNames: [String] { columns.map(\.name) }

    /// The index of the column named `name`, if there is one.
    public func columnIndex(named name: String) -> Int? { columns.firstIndex { $0.name == name } }

    /// The cell at `row`, `column` (see ``cells``).
    public subscript(row: Int, column: Int) -> Float {
        precondition(row >= 0 && row < rowCount && column >= 0 && column < columns.count,
                     "Table: cell (\(row), \(column)) is outside \(rowCount) rows × \(columns.count) columns")
        return cells[row * columns.count + column]
    }

    /// The line of the file (the header being line 1) on which row `row` (from 0) starts.
    public func line(ofRow row: Int) -> Int {
        var lo = 0, hi = lineJumps.count  // the last jump at or before `row`
        while lo < hi { let mid = (lo + hi) / 2; if lineJumps[mid].row <= row { lo = mid + 1 } else { hi = mid } }
        return lo == 0 ? row + 2 : lineJumps[lo - 1].line + (row - lineJumps[lo - 1].row)
    }

    /// Reads the table in the file at `path`. `separator` is `,` or `\t` (by default from the file name and the
    /// header, see ``Table``). A regular file is mapped into memory (read-only pages shared with the page cache, no
    /// copy) for the parse and unmapped after it; anything else (a pipe) is read.
    public init(contentsOf path: String, separator: UInt8? = nil) throws(TableError) {
        let lower = path.lowercased()
        let named: UInt8? = separator ?? (lower.hasSuffix(".tsv") || lower.hasSuffix(".tab") ? 9 : nil)
        self = try Table.withContents(of: path) { buffer throws(TableError) in
            var reader = CSVReader(buffer: buffer, path: path, separator: named)
            return try reader.read()
        }
    }

    /// Parses the table held in `bytes` (a file's contents; `path` names it in errors).
    public init(bytes: [UInt8], path: String = "<table>", separator: UInt8? = nil) throws(TableError) {
        var bytes = bytes
        if bytes.last != 10 { bytes.append(10) }  // every record ends with a newline: scans need no end checks
        self = try bytes.withUnsafeBufferPointer { buffer throws(TableError) in
            var reader = CSVReader(buffer: buffer, path: path, separator: separator)
            return try reader.read()
        }
    }

    init(path: String, columns: [Column], rowCount: Int, cells: [Float], lineJumps: [(row: Int, line: Int)]) {
        self.path = path
        self.columns = columns
        self.rowCount = rowCount
        self.cells = cells
        self.lineJumps = lineJumps
    }

    /// Calls `body` with the file's bytes followed by a newline if they do not end with one (so that scans need
    /// no end checks): a private mapping of a regular file (the newline written into the last page's slack, or
    /// a read copy when the size is a whole number of pages), or the bytes read from anything else.
    static func withContents<R>(of path: String, _ body: (UnsafeBufferPointer<UInt8>) throws(TableError) -> R) throws(TableError) -> R {
        // Only regular files (checked before opening: opening a FIFO with no writer would wait for ever, and a
        // device such as /dev/zero never ends).
        var status = stat()
        if stat(path, &status) == 0 {
            let kind = status.st_mode & S_IFMT
            if kind == S_IFDIR { throw .unreadable(path: path, reason: "it is a folder, not a file") }
            if kind != S_IFREG { throw .unreadable(path: path, reason: "not a regular file (a device, FIFO or socket)") }
        }
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT { throw .fileNotFound(path: path) }
            throw .unreadable(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw .unreadable(path: path, reason: "it is a folder, not a file") }
        let size = Int(info.st_size), page = Int(sysconf(Int32(_SC_PAGESIZE)))
        if (info.st_mode & S_IFMT) == S_IFREG && size > 0 && size % page != 0,
           let mapped = mmap(nil, size + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_POPULATE, descriptor, 0),
           mapped != MAP_FAILED {
            defer { munmap(mapped, size + 1) }
            let bytes = mapped.assumingMemoryBound(to: UInt8.self)
            let count = bytes[size - 1] == 10 ? size : size + 1
            if count > size { bytes[size] = 10 }  // in the zero-filled rest of the last page
            return try body(UnsafeBufferPointer(start: bytes, count: count))
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size + 1)
        var chunk = max(1 << 16, size + 1)  // a regular file in one read; a pipe in pieces
        var failure: Int32 = 0
        while true {
            let before = bytes.count
            var readCount = 0
            bytes.append(contentsOf: repeatElement(0, count: chunk))
            bytes.withUnsafeMutableBufferPointer { buffer in
                readCount = read(descriptor, buffer.baseAddress! + before, chunk)
                if readCount < 0 { failure = errno }
            }
            bytes.removeLast(chunk - max(readCount, 0))
            if readCount < 0 {
                if failure == EINTR { continue }
                throw .unreadable(path: path, reason: String(cString: strerror(failure)))
            }
            if readCount == 0 { break }
            chunk = 1 << 20
        }
        if bytes.last != 10 { bytes.append(10) }
        return try bytes.withUnsafeBufferPointer { buffer throws(TableError) in try body(buffer) }
    }
}

/// The byte-level CSV parser behind ``Table``: one pass over the bytes, cells written straight into the table's
/// `Float` array.
struct CSVReader {
    let buffer: UnsafeBufferPointer<UInt8>  // ends with a newline
    let path: String
    var separator: UInt8
    let end: UnsafePointer<UInt8>

    init(buffer: UnsafeBufferPointer<UInt8>, path: String, separator: UInt8?) {
        self.buffer = buffer
        self.path = path
        self.separator = separator ?? 0
        end = buffer.baseAddress! + buffer.count
    }

    /// The state of one column while reading.
    struct ColumnState {
        enum Kind { case undecided, numeric, text }
        var kind = Kind.undecided
        var isInteger = true
        var firstMissing: Int?  // line
        var categories: [String] = []
        var codes: [String: Int] = [:]
    }

    /// How a range of rows ended.
    struct Part {
        var rows = 0
        var jumps: [(row: Int, line: Int)] = []
        var error: TableError?
    }

    mutating func read() throws(TableError) -> Table {
        let base = buffer.baseAddress!
        if memchr(base, 0, buffer.count) != nil {
            let offset = UnsafeRawPointer(memchr(base, 0, buffer.count)!) - UnsafeRawPointer(base)
            throw .notText(path: path, line: lineOf(offset), offset: offset)
        }
        var p = base
        if buffer.count >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF { p += 3 }
        var line = 1
        while p < end && (p.pointee == 10 || (p.pointee == 13 && p[1] == 10)) { p += p.pointee == 13 ? 2 : 1; line += 1 }
        guard p < end else { throw .empty(path: path) }
        if separator == 0 {
            let headerEnd = UnsafePointer<UInt8>(memchr(p, 10, end - p)!.assumingMemoryBound(to: UInt8.self))
            let tabs = memchr(p, 9, headerEnd - p) != nil, commas = memchr(p, 44, headerEnd - p) != nil
            separator = tabs && !commas ? 9 : 44
        }
        // The header.
        var names: [String] = []
        var field: [UInt8] = []
        while true {
            let start = p
            try readField(&p, into: &field, line: &line)
            guard let name = String(validating: field, as: UTF8.self) else {
                throw .notText(path: path, line: line, offset: start - base)
            }
            names.append(name)
            if p.pointee == separator { p += 1; continue }
            p += p.pointee == 13 ? 2 : 1
            line += 1
            break
        }
        let columnCount = names.count
        for (i, name) in names.enumerated() where names[..<i].contains(name) { throw .duplicateColumn(path: path, name: name) }
        while p < end && (p.pointee == 10 || (p.pointee == 13 && p[1] == 10)) { p += p.pointee == 13 ? 2 : 1; line += 1 }
        guard p < end else { throw .headerOnly(path: path) }

        // At most one row per remaining newline.
        let bodyStart = p
        let maximumRows = countNewlines(from: bodyStart, to: end)
        var states = [ColumnState](repeating: ColumnState(), count: columnCount)
        var part = Part()
        let quoted = memchr(bodyStart, 34, end - bodyStart) != nil
        let firstBodyLine = line
        let cells = [Float](unsafeUninitializedCapacity: maximumRows * columnCount) { output, initialized in
            let out = output.baseAddress!
            // The first row decides the kinds; then, with no quotes and numbers only, two halves in parallel.
            var p = bodyStart, line = firstBodyLine
            part = parseRows(from: &p, line: &line, rowLimit: 1, states: &states, output: out, columnCount: columnCount)
            let numeric = states.allSatisfy { $0.kind == .numeric }
            let rest = end - p
            if part.error == nil && part.rows == 1 && !quoted && numeric && Parallel.threadCount > 1 && rest > 1 << 20 {
                // Split at a newline near the middle; the second half's first line is known by counting.
                let middle = UnsafePointer<UInt8>(memchr(p + rest / 2, 10, end - (p + rest / 2))!
                    .assumingMemoryBound(to: UInt8.self)) + 1
                let firstHalfRows = countNewlines(from: p, to: middle)  // an upper bound: blank lines are skipped
                var halves = [Part(), Part()], halfStates = [states, states]
                let starts = [p, middle], lines = [line, line + firstHalfRows]
                let outputs = [out + columnCount, out + columnCount * (1 + firstHalfRows)]
                let limits = [firstHalfRows, Int.max]
                let reader = self
                halves.withUnsafeMutableBufferPointer { halves in
                    halfStates.withUnsafeMutableBufferPointer { halfStates in
                        Parallel.run(parts: 2) { i in
                            var q = starts[i], l = lines[i]
                            halves[i] = reader.parseRows(from: &q, line: &l, rowLimit: limits[i], states: &halfStates[i],
                                                         output: outputs[i], columnCount: columnCount, stop: i == 0 ? middle : nil)
                        }
                    }
                }
                if let error = halves[0].error ?? halves[1].error {
                    part.error = error
                } else {
                    // Close the gap that blank lines left in the first half.
                    if halves[0].rows < firstHalfRows {
                        memmove(out + columnCount * (1 + halves[0].rows), outputs[1],
                                halves[1].rows * columnCount * MemoryLayout<Float>.stride)
                    }
                    part.jumps += halves[0].jumps.map { ($0.row + 1, $0.line) }
                    part.jumps.append((1 + halves[0].rows, lines[1]))
                    part.jumps += halves[1].jumps.map { ($0.row + 1 + halves[0].rows, $0.line) }
                    part.rows = 1 + halves[0].rows + halves[1].rows
                    for c in 0..<columnCount {
                        states[c].isInteger = halfStates[0][c].isInteger && halfStates[1][c].isInteger
                        states[c].firstMissing = states[c].firstMissing ?? halfStates[0][c].firstMissing ?? halfStates[1][c].firstMissing
                    }
                }
            } else if part.error == nil {
                let more = parseRows(from: &p, line: &line, rowLimit: Int.max, states: &states,
                                     output: out + part.rows * columnCount, columnCount: columnCount)
                part.error = more.error
                part.jumps += more.jumps.map { ($0.row + part.rows, $0.line) }
                part.rows += more.rows
            }
            initialized = part.error == nil ? part.rows * columnCount : 0
        }
        if let error = part.error { throw error }
        if firstBodyLine != 2 { part.jumps.insert((0, firstBodyLine), at: 0) }
        let columns = zip(names, states).map { name, state in
            Table.Column(name: name, categories: state.kind == .text ? state.categories : nil,
                         isInteger: state.kind != .text && state.isInteger, firstMissingLine: state.firstMissing)
        }
        return Table(path: path, columns: columns, rowCount: part.rows, cells: cells, lineJumps: part.jumps)
    }

    /// Parses rows from `p` until the end of the buffer, `stop` or `rowLimit` rows, writing each row's cells at
    /// `output`; `line` follows the file's lines. Returns the rows read and the first error.
    func parseRows(from p: inout UnsafePointer<UInt8>, line: inout Int, rowLimit: Int, states: inout [ColumnState],
                   output: UnsafeMutablePointer<Float>, columnCount: Int, stop: UnsafePointer<UInt8>? = nil) -> Part {
        var part = Part()
        let stop = stop ?? end
        let separator = separator
        var field: [UInt8] = []
        var expectedLine = line  // the line the next row starts on if there are no jumps
        states.withUnsafeMutableBufferPointer { states in
            while p < stop && part.rows < rowLimit {
                // Blank lines are skipped.
                if p.pointee == 10 || (p.pointee == 13 && p[1] == 10) { p += p.pointee == 13 ? 2 : 1; line += 1; continue }
                if line != expectedLine { part.jumps.append((part.rows, line)); expectedLine = line }
                let rowLine = line
                let row = output + part.rows * columnCount
                for c in 0..<columnCount {
                    var value: Float
                    // The fast path: an unquoted number straight from the bytes.
                    if states[c].kind == .numeric, let scanned = DecimalParsing.scan(p, end: end),
                       scanned.end.pointee == separator || scanned.end.pointee == 10 || scanned.end.pointee == 13,
                       scanned.value.isFinite {
                        value = scanned.value
                        if !scanned.isInteger { states[c].isInteger = false }
                        p = scanned.end
                    } else {
                        let start = p
                        do throws(TableError) {
                            try readField(&p, into: &field, line: &line)
                            value = try cellValue(field, state: &states[c], column: c, line: rowLine,
                                                  offset: start - buffer.baseAddress!)
                        } catch {
                            part.error = error; return
                        }
                    }
                    row[c] = value
                    // After a field: a separator, or the line end after the last field.
                    if c < columnCount - 1 {
                        guard p.pointee == separator else {
                            part.error = .raggedRow(path: path, line: rowLine, expected: columnCount, found: c + 1); return
                        }
                        p += 1
                    } else {
                        if p.pointee == 13 && p[1] == 10 { p += 1 }
                        guard p.pointee == 10 else {
                            part.error = .raggedRow(path: path, line: rowLine, expected: columnCount,
                                                    found: columnCount + fieldsLeft(from: p)); return
                        }
                        p += 1
                        line += 1
                    }
                }
                part.rows += 1
                expectedLine += 1
                if line != expectedLine { expectedLine = -1 }  // a field spanned lines: the next row jumps
            }
        }
        return part
    }

    /// The value of one cell (its unquoted bytes) in a column, deciding the column's kind at its first value.
    func cellValue(_ field: [UInt8], state: inout ColumnState, column: Int, line: Int, offset: Int) throws(TableError) -> Float {
        if isMissing(field) {
            if state.firstMissing == nil { state.firstMissing = line }
            return .nan
        }
        if state.kind == .undecided {
            let number = field.withUnsafeBufferPointer { DecimalParsing.parse($0) }
            state.kind = number != nil ? .numeric : .text  // (a number too large for a Float is refused below)
        }
        switch state.kind {
        case .numeric, .undecided:
            let number = field.withUnsafeBufferPointer { DecimalParsing.parse($0) }
            guard let number, number.value.isFinite else {
                let text = String(decoding: field.prefix(40), as: UTF8.self)
                if number != nil { throw .outOfRange(path: path, line: line, column: columnName(column), columnNumber: column + 1, text: text) }
                throw .notANumber(path: path, line: line, column: columnName(column), columnNumber: column + 1, text: text)
            }
            if !number.isInteger { state.isInteger = false }
            return number.value
        case .text:
            guard let text = String(validating: field, as: UTF8.self) else {
                throw .notText(path: path, line: line, offset: offset)
            }
            if let code = state.codes[text] { return Float(code) }
            state.codes[text] = state.categories.count
            state.categories.append(text)
            return Float(state.categories.count - 1)
        }
    }

    /// Whether a cell's text means "no value": empty, `NA`, `N/A`, `NaN`, `nan`, `null`, `NULL` (spaces around it
    /// ignored).
    func isMissing(_ field: [UInt8]) -> Bool {
        var lower = 0, upper = field.count
        while lower < upper && (field[lower] == 32 || (field[lower] == 9 && separator != 9)) { lower += 1 }
        while upper > lower && (field[upper - 1] == 32 || (field[upper - 1] == 9 && separator != 9)) { upper -= 1 }
        switch upper - lower {
        case 0: return true
        case 2: return field[lower] == 78 && field[lower + 1] == 65  // NA
        case 3:
            let text = (field[lower], field[lower + 1], field[lower + 2])
            return text == (78, 47, 65) || text == (78, 97, 78) || text == (110, 97, 110)  // N/A NaN nan
        case 4:
            let text = String(decoding: field[lower..<upper], as: UTF8.self)
            return text == "null" || text == "NULL"
        default: return false
        }
    }

    /// Reads one field at `p` into `field` (unquoted), leaving `p` at the separator or the line end that follows it.
    func readField(_ p: inout UnsafePointer<UInt8>, into field: inout [UInt8], line: inout Int) throws(TableError) {
        field.removeAll(keepingCapacity: true)
        if p.pointee == 34 {  // a quoted field: "" is a quote, separators and line ends are text
            let startLine = line
            p += 1
            while true {
                guard p < end else { throw .unterminatedQuote(path: path, line: startLine) }
                let byte = p.pointee
                if byte == 34 {
                    if p + 1 < end && p[1] == 34 { field.append(34); p += 2; continue }
                    p += 1
                    break
                }
                if byte == 10 { line += 1 }
                field.append(byte)
                p += 1
            }
            // Anything between the closing quote and the separator is kept, as spreadsheets do.
        }
        while true {
            let byte = p.pointee
            if byte == separator || byte == 10 || (byte == 13 && p[1] == 10) { return }
            field.append(byte)
            p += 1
        }
    }

    /// How many more fields the line at `p` (a separator) holds.
    func fieldsLeft(from start: UnsafePointer<UInt8>) -> Int {
        var p = start, count = 0, line = 0
        var field: [UInt8] = []
        while p.pointee == separator {
            p += 1
            count += 1
            guard (try? readField(&p, into: &field, line: &line)) != nil else { break }
        }
        return count
    }

    func columnName(_ column: Int) -> String {
        // The header is parsed again only for an error message.
        var p = buffer.baseAddress!, line = 1
        if buffer.count >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF { p += 3 }
        while p.pointee == 10 || (p.pointee == 13 && p[1] == 10) { p += p.pointee == 13 ? 2 : 1 }
        var field: [UInt8] = []
        for c in 0...column {
            guard (try? readField(&p, into: &field, line: &line)) != nil else { return "?" }
            if c == column { return String(decoding: field, as: UTF8.self) }
            guard p.pointee == separator else { return "?" }
            p += 1
        }
        return "?"
    }

    func countNewlines(from start: UnsafePointer<UInt8>, to stop: UnsafePointer<UInt8>) -> Int {
        var p = UnsafeRawPointer(start), count = 0
        let stop = UnsafeRawPointer(stop)
        while p < stop, let found = memchr(p, 10, stop - p) {
            count += 1
            p = UnsafeRawPointer(found) + 1
        }
        return count
    }

    func lineOf(_ offset: Int) -> Int { 1 + countNewlines(from: buffer.baseAddress!, to: buffer.baseAddress! + offset) }
}
