/// The values of the numeric flags. ArgumentParser's own parsing says only "is invalid" for `--epochs
/// 99999999999999999999` or `--seed -1`, and reads `--learning-rate 1e400` as infinity and `1e-50` as 0, which the
/// range checks then report as if the user had typed them; every numeric option is read through `number` instead
/// (`@Option(transform: number)`), which says what is wrong: out of range (with the range), not a whole number, or
/// not a number. (A transform hides ArgumentParser's "(default: …)", so each such option states its default in its
/// help, once.)

/// The reason a flag's value was refused; ArgumentParser prints it after "The value '…' is invalid for '--flag'".
struct NumberArgumentError: Error, CustomStringConvertible {
    let description: String
}

/// `text` as a whole number of type `T`: refused as out of range (with `T`'s range) when it does not fit, as not a
/// whole number when it has a fraction or an exponent, and as not a number otherwise.
@Sendable func number<T: FixedWidthInteger>(_ text: String) throws -> T {
    if let value = T(text) { return value }
    let digits = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
    if !digits.isEmpty && digits.allSatisfy({ $0.isASCII && $0.isNumber }) {
        throw NumberArgumentError(description: "out of range (a whole number from \(T.min) to \(T.max))")
    }
    if let value = Double(text), value.isFinite {
        throw NumberArgumentError(description: "not a whole number (write it without a fraction or an exponent)")
    }
    throw NumberArgumentError(description: "not a number")
}

/// `text` as a floating-point number of type `T`: a finite number too large for `T` (`1e400`, or `1e39` for a
/// `Float`) or too small to be anything but zero (`1e-50`) is refused as out of range, rather than read as infinity
/// or 0. `inf` and `nan` typed as such are returned, for the flag's own range check to refuse.
@Sendable func number<T: BinaryFloatingPoint & LosslessStringConvertible>(_ text: String) throws -> T {
    guard let value = T(text) else { throw NumberArgumentError(description: "not a number") }
    let lower = text.lowercased()
    let unsigned = lower.first == "-" || lower.first == "+" ? lower.dropFirst() : Substring(lower)
    if unsigned.hasPrefix("inf") || unsigned.hasPrefix("nan") { return value }
    let type = T.self == Float.self ? "32-bit" : "64-bit"
    if value.isInfinite {
        throw NumberArgumentError(description: "out of range (the largest magnitude a \(type) float holds is \(T.greatestFiniteMagnitude))")
    }
    // A mantissa with a non-zero digit that became 0: underflow.
    let hex = unsigned.hasPrefix("0x")
    let mantissa = (hex ? unsigned.dropFirst(2) : unsigned).prefix { hex ? $0 != "p" : $0 != "e" }
    if value == 0 && mantissa.contains(where: { $0 != "0" && $0 != "." }) {
        throw NumberArgumentError(description: "out of range (the smallest non-zero magnitude a \(type) float holds is \(T.leastNonzeroMagnitude))")
    }
    return value
}
