/// Why a table (CSV or TSV file) could not be used. Each case names the file and, where there is one, the line
/// (counted from 1, the header being line 1) and the column (by its name in the header and its number from 1).
public enum TableError: Error, Equatable, Sendable, CustomStringConvertible {
    /// There is no file at `path`.
    case fileNotFound(path: String)
    /// The file exists but could not be read (permissions, a folder, an I/O error).
    case unreadable(path: String, reason: String)
    /// The file holds no header (it is empty, or only blank lines).
    case empty(path: String)
    /// The file has a header but no rows.
    case headerOnly(path: String)
    /// The file is not text: a NUL byte, or bytes that are not UTF-8 in a header or a text cell.
    case notText(path: String, line: Int, offset: Int)
    /// A row with more or fewer fields than the header.
    case raggedRow(path: String, line: Int, expected: Int, found: Int)
    /// A quoted field that runs to the end of the file.
    case unterminatedQuote(path: String, line: Int)
    /// Two header columns share a name.
    case duplicateColumn(path: String, name: String)
    /// A cell of a numeric column (its first value was a number) that is not a number.
    case notANumber(path: String, line: Int, column: String, columnNumber: Int, text: String)
    /// A number in a numeric column too large for a 32-bit float (`1e400`).
    case outOfRange(path: String, line: Int, column: String, columnNumber: Int, text: String)
    /// An empty cell (or `NA`, `N/A`, `NaN`, `null`) where a value is needed.
    case missingValue(path: String, line: Int, column: String, columnNumber: Int)
    /// The target (or a feature the model needs) is not a column of the header.
    case unknownColumn(path: String, name: String, available: [String])
    /// A classification target with fewer than two classes.
    case oneClass(path: String, column: String, value: String)
    /// A regression target that is text.
    case textTarget(path: String, column: String, line: Int, text: String)
    /// A category of a text feature (or a class) that the model was not trained with.
    case unknownCategory(path: String, line: Int, column: String, columnNumber: Int, text: String)
    /// A table with no feature column (only the target).
    case noFeatures(path: String)

    /// One line: the file, the line and column where there is one, what was found and what was expected.
    public var description: String {
        switch self {
        case .fileNotFound(let path):
            DataError.fileNotFound(path: path).description  // worded as for any data file
        case .unreadable(let path, let reason):
            DataError.unreadable(path: path, reason: reason).description
        case .empty(let path):
            "\(path): the file is empty; expected a header row of column names and rows of values"
        case .headerOnly(let path):
            "\(path): the file has a header but no rows of values"
        case .notText(let path, let line, let offset):
            "\(path), line \(line): not a text file (a NUL byte or bytes that are not UTF-8 at offset \(offset)); expected a CSV or TSV table"
        case .raggedRow(let path, let line, let expected, let found):
            "\(path), line \(line): \(found) field\(found == 1 ? "" : "s"), expected \(expected) as in the header"
        case .unterminatedQuote(let path, let line):
            "\(path), line \(line): a quoted field is not closed before the end of the file"
        case .duplicateColumn(let path, let name):
            "\(path): two columns of the header are named '\(shown(name))'"
        case .notANumber(let path, let line, let column, let number, let text):
            "\(path), line \(line), column '\(shown(column))' (\(number)): '\(shown(text))' is not a number (the column's first value is a number)"
        case .outOfRange(let path, let line, let column, let number, let text):
            "\(path), line \(line), column '\(shown(column))' (\(number)): \(shown(text)) is out of range (a 32-bit float holds magnitudes up to 3.4e38)"
        case .missingValue(let path, let line, let column, let number):
            "\(path), line \(line), column '\(shown(column))' (\(number)): the cell is empty or NA (fill it, drop the row, or, for a feature rather than the target, pass --impute mean)"
        case .unknownColumn(let path, let name, let available):
            "\(path): no column named '\(shown(name))'; the columns are \(available.map { "'\(shown($0))'" }.joined(separator: ", "))"
        case .oneClass(let path, let column, let value):
            "\(path), column '\(shown(column))': every row has the class '\(shown(value))'; classification needs at least two classes"
        case .textTarget(let path, let column, let line, let text):
            "\(path), line \(line), column '\(shown(column))': '\(shown(text))' is not a number, and regression needs numeric targets"
        case .unknownCategory(let path, let line, let column, let number, let text):
            "\(path), line \(line), column '\(shown(column))' (\(number)): '\(shown(text))' is not one of the categories the model was trained with"
        case .noFeatures(let path):
            "\(path): the table has no feature columns besides the target"
        }
    }

    /// `text` on one line: line breaks written as `\n` and `\r`, at most 60 characters.
    private func shown(_ text: String) -> String {
        let escaped = text.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
        return escaped.count > 60 ? escaped.prefix(57) + "..." : escaped
    }
}
