#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decimal numbers as a table's cells write them (`-1.25`, `3`, `6.02e23`), read into the nearest `Float`.
///
/// The syntax is `[+-]digits[.digits][(e|E)[+-]digits]` (or `.digits`), with at least one digit before the
/// exponent. The value is correctly rounded: up to 19 significant digits are gathered into an integer `m` and a
/// power of ten `e`; when `m ≤ 2²⁴` and `|e| ≤ 10` both are exact `Float`s and one multiplication or division
/// rounds once; when `m ≤ 2⁵³` and `|e| ≤ 22` the same in `Double` (Clinger's fast path) is rounded again to
/// `Float`, which is right unless the `Double` lies exactly halfway between two `Float`s; that case, more than 19
/// digits, and larger exponents go to the C library's `strtof`.
enum DecimalParsing {
    /// The result of scanning a number at the start of some bytes.
    struct Scanned {
        /// The value (meaningful only when `end` is past at least one digit).
        var value: Float
        /// The first byte after the number.
        var end: UnsafePointer<UInt8>
        /// Whether it was written as an integer: no decimal point and no exponent.
        var isInteger: Bool
    }

    /// 10^e for e in 0...10, exact in `Float`.
    @inline(__always)
    static func floatPower(_ e: Int) -> Float { Float(doublePower(e)) }

    /// 10^e for e in 0...22, exact in `Double` (a switch, not a global array: no lazy initialisation or bounds
    /// check in the loop).
    @inline(__always)
    static func doublePower(_ e: Int) -> Double {
        switch e {
        case 0: 1e0
        case 1: 1e1
        case 2: 1e2
        case 3: 1e3
        case 4: 1e4
        case 5: 1e5
        case 6: 1e6
        case 7: 1e7
        case 8: 1e8
        case 9: 1e9
        case 10: 1e10
        case 11: 1e11
        case 12: 1e12
        case 13: 1e13
        case 14: 1e14
        case 15: 1e15
        case 16: 1e16
        case 17: 1e17
        case 18: 1e18
        case 19: 1e19
        case 20: 1e20
        case 21: 1e21
        default: 1e22
        }
    }

    /// 10^n for n in 0...8.
    @inline(__always)
    static func power(_ n: Int) -> UInt64 {
        switch n {
        case 0: 1
        case 1: 10
        case 2: 100
        case 3: 1000
        case 4: 10000
        case 5: 100_000
        case 6: 1_000_000
        case 7: 10_000_000
        default: 100_000_000
        }
    }

    /// How many digits (0 to 8) start at `p`, and their value, read as one 64-bit word (SWAR, as fast_float's
    /// `parse_eight_digits_unrolled`); none when fewer than 8 bytes remain before `end` (the caller then reads
    /// byte by byte).
    @inline(__always)
    static func eightDigits(_ p: UnsafePointer<UInt8>, end: UnsafePointer<UInt8>) -> (count: Int, value: UInt64) {
        guard end - p >= 8 else { return (0, 0) }
        let word = UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
        let offsets = word &- 0x3030_3030_3030_3030
        // A byte's high bit is set unless it is '0'…'9'; a borrow or carry only reaches bytes after a non-digit.
        let nonDigits = ((word &+ 0x4646_4646_4646_4646) | offsets) & 0x8080_8080_8080_8080
        let count = nonDigits == 0 ? 8 : nonDigits.trailingZeroBitCount / 8
        guard count > 0 else { return (0, 0) }
        // The digits moved to the top bytes, zeros (leading zero digits) below them; then pairs, fours, eight.
        var value = offsets << UInt64(8 * (8 - count))
        value = value &* 10 &+ (value >> 8)
        value = ((value & 0x0000_00FF_0000_00FF) &* 0x000F_4240_0000_0064
                 &+ ((value >> 16) & 0x0000_00FF_0000_00FF) &* 0x0000_2710_0000_0001) >> 32
        return (count, value & 0xFFFF_FFFF)
    }

    /// The significant digits of a number as they are read: up to 19 in `mantissa`, the value being
    /// `mantissa · 10^exponent`.
    struct Digits {
        var mantissa: UInt64 = 0, digits = 0, exponent = 0
        var sawDigit = false, truncated = false

        /// Reads the digits at `p` (of the integer part, or of the fraction after the point), eight at a time while
        /// they fit in 19 (leading zeros count as digits here: a number that needs more than 19 goes to strtof),
        /// then one at a time; digits beyond 19 are dropped (and a non-zero one marks the value `truncated`).
        @inline(__always)
        mutating func read(_ p: inout UnsafePointer<UInt8>, end: UnsafePointer<UInt8>, fraction: Bool) {
            var run = eightDigits(p, end: end)
            while run.count > 0 && digits + run.count <= 19 {
                sawDigit = true
                mantissa = mantissa &* power(run.count) &+ run.value
                digits += run.count
                if fraction { exponent -= run.count }
                p += run.count
                if run.count < 8 { break }
                run = eightDigits(p, end: end)
            }
            while true {
                let d = p.pointee &- 48
                if d > 9 { break }
                sawDigit = true
                if digits < 19 {
                    if mantissa != 0 || d != 0 { mantissa = mantissa &* 10 &+ UInt64(d); digits += 1 }
                    if fraction { exponent -= 1 }
                } else {
                    if !fraction { exponent += 1 }
                    if d != 0 { truncated = true }
                }
                p += 1
            }
        }
    }

    /// Scans the longest number that starts at `start` and ends before `end` (the bytes must be followed, before
    /// `end`, by a byte that cannot continue a number, such as a newline). Returns `nil` when no number starts
    /// there.
    @inline(__always)
    static func scan(_ start: UnsafePointer<UInt8>, end: UnsafePointer<UInt8>) -> Scanned? {
        var p = start
        var negative = false
        if p.pointee == UInt8(ascii: "-") { negative = true; p += 1 } else if p.pointee == UInt8(ascii: "+") { p += 1 }
        var number = Digits()
        var isInteger = true
        number.read(&p, end: end, fraction: false)
        if p.pointee == UInt8(ascii: ".") {
            isInteger = false
            p += 1
            number.read(&p, end: end, fraction: true)
        }
        let mantissa = number.mantissa, truncated = number.truncated
        var exponent = number.exponent
        guard number.sawDigit else { return nil }
        if p.pointee | 0x20 == UInt8(ascii: "e") {
            var q = p + 1, negativeExponent = false
            if q.pointee == UInt8(ascii: "-") { negativeExponent = true; q += 1 } else if q.pointee == UInt8(ascii: "+") { q += 1 }
            var written = 0, sawExponentDigit = false
            while true {
                let d = q.pointee &- 48
                if d > 9 { break }
                sawExponentDigit = true
                if written < 100_000 { written = written * 10 + Int(d) }
                q += 1
            }
            if sawExponentDigit {  // else the 'e' is not part of the number
                isInteger = false
                exponent += negativeExponent ? -written : written
                p = q
            }
        }
        var value: Float
        if mantissa == 0 {
            value = 0
        } else if !truncated && mantissa <= 1 << 24 && exponent >= -10 && exponent <= 10 {
            let m = Float(mantissa)
            value = exponent < 0 ? m / floatPower(-exponent) : m * floatPower(exponent)
        } else if !truncated && mantissa <= 1 << 53 && exponent >= -22 && exponent <= 22,
                  case let d = exponent < 0 ? Double(mantissa) / doublePower(-exponent) : Double(mantissa) * doublePower(exponent),
                  d >= Double(Float.leastNormalMagnitude) && d <= Double(Float.greatestFiniteMagnitude),
                  d.bitPattern & 0x1FFF_FFFF != 0x1000_0000 {
            value = Float(d)
        } else {
            return Scanned(value: slow(start, count: p - start), end: p, isInteger: isInteger)
        }
        return Scanned(value: negative ? -value : value, end: p, isInteger: isInteger)
    }

    /// `strtof` of `count` bytes at `start` (already checked to be a decimal number), on a NUL-terminated copy.
    static func slow(_ start: UnsafePointer<UInt8>, count: Int) -> Float {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: count + 1) { buffer in
            for i in 0..<count { buffer[i] = CChar(bitPattern: start[i]) }
            buffer[count] = 0
            return strtof(buffer.baseAddress!, nil)
        }
    }

    /// The number that `bytes` hold from first to last (spaces around it allowed), or `nil` if they hold anything
    /// else.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> (value: Float, isInteger: Bool)? {
        var lower = 0, upper = bytes.count
        while lower < upper && (bytes[lower] == 32 || bytes[lower] == 9) { lower += 1 }
        while upper > lower && (bytes[upper - 1] == 32 || bytes[upper - 1] == 9) { upper -= 1 }
        guard lower < upper else { return nil }
        // A copy followed by a byte that ends any number, so that the scan stops inside it.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: upper - lower + 1) { copy in
            for i in lower..<upper { copy[i - lower] = bytes[i] }
            copy[upper - lower] = 0
            let base = UnsafePointer(copy.baseAddress!)
            guard let scanned = scan(base, end: base + (upper - lower) + 1), scanned.end == base + (upper - lower) else { return nil }
            return (scanned.value, scanned.isInteger)
        }
    }
}
