import CSIMD

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

/// `eˣ` for each lane, for `x` in [−87, 88] (finite inputs outside are clamped to it, so the result is a finite
/// normal number; a NaN lane stays NaN, as `expf` keeps it). Cody–Waite range reduction `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, and Cephes' degree-6
/// polynomial for `eʳ`; `2ⁿ` is built in the exponent bits. Maximum relative error about 2·10⁻⁷ (about 2 ulp;
/// checked against `Double` `exp` over the whole range by the tests).
@inlinable @inline(__always)
func exponential(_ x: SIMD8<Float>) -> SIMD8<Float> {
    var x = x
    x.replace(with: -87, where: x .< -87)  // (faster here than clamped(lowerBound:upperBound:))
    x.replace(with: 88, where: x .> 88)
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

/// `√v` for each lane: the IEEE square root, with the CPU's packed instruction (SSE `sqrtps`, NEON `vsqrtq`),
/// which Swift's lane-by-lane `squareRoot()` on SIMD types does not use.
@inlinable @inline(__always)
func squareRoot(_ v: SIMD8<Float>) -> SIMD8<Float> {
    SIMD8(lowHalf: bp_sqrt4(v.lowHalf), highHalf: bp_sqrt4(v.highHalf))
}

/// `output[i] = eˣ` for `x = input[i]` (see ``exponential(_:)`` for range and accuracy).
@_spi(Internals) public func exponentialForward(output: Matrix, input: Matrix) {
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
    if i < count { storeTail(f(loadTail(input + i, count - i)), output + i, count - i) }
}

/// The `count` (< 8) `Float`s at `p`, the other lanes 0: for the tail of a SIMD loop.
@inlinable @inline(__always)
func loadTail(_ p: UnsafePointer<Float>, _ count: Int) -> SIMD8<Float> {
    var v = SIMD8<Float>(repeating: 0)
    for lane in 0..<count { v[lane] = p[lane] }
    return v
}

/// Stores the first `count` (< 8) lanes of `v` at `p`: for the tail of a SIMD loop.
@inlinable @inline(__always)
func storeTail(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    for lane in 0..<count { p[lane] = v[lane] }
}
