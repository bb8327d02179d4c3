import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A seeded, deterministic random number generator: xoshiro256** (Blackman & Vigna), seeded through SplitMix64.
///
/// The same seed gives the same sequence on every platform and Swift version, which is what makes training runs
/// reproducible (Swift's own `shuffle(using:)` and `Float.random(in:using:)` are not promised to stay the same, so
/// this library draws through its own ``nextUniform()``, ``nextGaussian()`` and ``shuffle(_:)``).
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
    /// The four words of xoshiro256** state (public so that checkpoints can save and restore it).
    public var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose state is derived from `seed` by SplitMix64.
    public init(seed: UInt64) {
        var s = seed
        func splitMix() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    /// A uniform `Double` in `[0, 1)` with 53 random bits.
    public mutating func nextUniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A standard normal `Double` (Box–Muller; one draw per call, two uniforms consumed).
    public mutating func nextGaussian() -> Double {
        let u1 = 1 - nextUniform()  // (0, 1]: log is finite
        let u2 = nextUniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// A uniform integer in `0..<bound` without modulo bias (Lemire's method).
    public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0, "SeededGenerator.nextIndex: bound must be positive, got \(bound)")
        let b = UInt64(bound)
        var product = next().multipliedFullWidth(by: b)
        if product.low < b {
            let threshold = (0 &- b) % b
            while product.low < threshold { product = next().multipliedFullWidth(by: b) }
        }
        return Int(product.high)
    }

    /// Shuffles `elements` in place (Fisher–Yates), deterministically for a given state.
    public mutating func shuffle<C: MutableCollection & RandomAccessCollection>(_ elements: inout C) where C.Index == Int {
        var i = elements.count - 1
        while i > 0 {
            let j = nextIndex(below: i + 1)
            elements.swapAt(elements.startIndex + i, elements.startIndex + j)
            i -= 1
        }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.state.0 == rhs.state.0 && lhs.state.1 == rhs.state.1
            && lhs.state.2 == rhs.state.2 && lhs.state.3 == rhs.state.3
    }
}

@inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

/// Seeds for layers built without one: a process-wide sequence, so that two layers built without a seed never start
/// alike (the first is 0x5EED_0001, then …02, …). To reproduce a network, give every layer a seed, or draw them all
/// from one seed with ``Network/init(inputSize:layers:names:initializer:seed:)``.
enum LayerSeeds {
    private static let counter = Atomic<UInt64>(0x5EED_0000)
    /// The next seed of the sequence.
    static func next() -> UInt64 { counter.add(1, ordering: .relaxed).newValue }
}
