// SIMD versions of the element-wise functions the hot loops need. glibc's expf and Swift's squareRoot() are
// scalar here (LLVM does not vectorise them for the baseline x86-64 target), so these are written with SIMD8
// arithmetic that compiles to packed instructions on any x86-64 (SSE2) or ARM64 CPU.

/// Eight `Float`s from `p + i` (unaligned).
@inlinable @inline(__always)
func load8(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
}

/// Stores eight `Float`s at `p + i` (unaligned).
@inlinable @inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// `eˣ` for each lane, for `x` in [−87, 88] (inputs outside are clamped to it, so the result is always a
/// finite normal number). Cody–Waite range reduction `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, and Cephes' degree-6
/// polynomial for `eʳ`; `2ⁿ` is built in the exponent bits. Maximum relative error about 2·10⁻⁷ (about 2 ulp;
/// checked against `Double` `exp` over the whole range by the tests).
@inlinable @inline(__always)
public func exponential(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let x = x.clamped(lowerBound: SIMD8(repeating: -87), upperBound: SIMD8(repeating: 88))
    // n = round(x / ln 2), by adding 1.5·2²³: the sum's low mantissa bits hold n.
    let shifter = SIMD8<Float>(repeating: 12_582_912)
    let t = x * 1.442_695_04 + shifter
    let n = t - shifter
    let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4  // ln 2 split in two (Cephes C1, C2)
    var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    p = p * (r * r) + r + 1
    let bits = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000  // n as an integer
    let scale = unsafeBitCast((bits &+ 127) &<< 23, to: SIMD8<Float>.self)  // 2ⁿ
    return p * scale
}

/// `√v` for each lane (`v ≥ 0`), from an inverse square root refined by three Newton steps and `√v = v·(1/√v)`.
/// Relative error about 3·10⁻⁷; `√0 = 0`.
@inlinable @inline(__always)
public func squareRoot(_ v: SIMD8<Float>) -> SIMD8<Float> {
    let positive = v.replacing(with: .leastNormalMagnitude, where: v .< .leastNormalMagnitude)
    var y = unsafeBitCast(0x5F37_5A86 &- (unsafeBitCast(positive, to: SIMD8<Int32>.self) &>> 1), to: SIMD8<Float>.self)
    let half = positive * 0.5
    y = y * (1.5 - half * y * y)
    y = y * (1.5 - half * y * y)
    y = y * (1.5 - half * y * y)
    return (v * y).replacing(with: 0, where: v .<= 0)
}

/// `output[i] = eˣ` for `x = input[i]` (see ``exponential(_:)`` for range and accuracy).
public func exponentialForward(output: Matrix, input: Matrix) {
    precondition(sameShape: output, input, "exponentialForward")
    mapLanes(output.pointer, input.pointer, input.count, exponential)
}

/// Applies `f` to eight lanes at a time over `count` elements from `input` into `output`; the tail goes through a
/// zero-padded vector.
@inlinable @inline(__always)
func mapLanes(_ output: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, _ count: Int,
              _ f: (SIMD8<Float>) -> SIMD8<Float>) {
    var i = 0
    while i + 8 <= count { store8(f(load8(input, i)), output, i); i += 8 }
    if i < count {
        var tail = SIMD8<Float>(repeating: 0)
        for j in 0..<(count - i) { tail[j] = input[i + j] }
        let result = f(tail)
        for j in 0..<(count - i) { output[i + j] = result[j] }
    }
}

/// The first `valid` (1…8) `Float`s from `p + i`, the other lanes 0.
@inlinable @inline(__always)
func load8(_ p: UnsafePointer<Float>, _ i: Int, _ valid: Int) -> SIMD8<Float> {
    if valid == 8 { return load8(p, i) }
    var v = SIMD8<Float>(repeating: 0)
    for lane in 0..<valid { v[lane] = p[i + lane] }
    return v
}

/// Stores the first `valid` (1…8) lanes of `v` at `p + i`.
@inlinable @inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ i: Int, _ valid: Int) {
    if valid == 8 { store8(v, p, i); return }
    for lane in 0..<valid { p[i + lane] = v[lane] }
}

/// Calls `body(i, valid)` for `i = 0, 8, 16, …` below `count`, `valid` being 8 except at the tail: the shape of
/// every SIMD loop over a flat buffer (load with ``load8(_:_:_:)``, store with ``store8(_:_:_:_:)``).
@inlinable @inline(__always)
func forEachBlockOf8(_ count: Int, _ body: (_ i: Int, _ valid: Int) -> Void) {
    var i = 0
    while i < count {
        body(i, min(8, count - i))
        i += 8
    }
}
