/// Preparing a data set for training: subsets, a seeded train/validation split, standardisation, and batches.
extension Dataset {
    /// The samples at `indices`, in that order, as a new data set (features and targets copied).
    public func subset(_ indices: some Collection<Int>) -> Dataset {
        for index in indices {
            precondition(index >= 0 && index < count, "Dataset.subset: index \(index) is outside 0..<\(count)")
        }
        func rows<T>(_ values: [T], width: Int) -> [T] {
            var result: [T] = []
            result.reserveCapacity(indices.count * width)
            values.withUnsafeBufferPointer { source in
                for index in indices { result.append(contentsOf: source[(index * width)..<((index + 1) * width)]) }
            }
            return result
        }
        let newFeatures: Features = switch features {
        case .bytes(let bytes): .bytes(rows(bytes, width: featureCount))
        case .floats(let values): .floats(rows(values, width: featureCount))
        }
        let newTargets: Targets = switch targets {
        case .labels(let labels): .labels(rows(labels, width: 1))
        case .values(let values, let width): .values(rows(values, width: width), width: width)
        }
        var result = Dataset(features: newFeatures, targets: newTargets, count: indices.count, featureCount: featureCount,
                             targetWidth: targetWidth)
        result.imageShape = imageShape
        return result
    }

    /// Splits the samples at random into a training set and a validation set of
    /// `⌈validationFraction · count⌉` samples.
    ///
    /// The split is scikit-learn's `train_test_split(…, test_size=validationFraction, random_state=seed)` for
    /// `seed < 2³²`: the same permutation (NumPy's legacy `RandomState(seed).permutation(count)`, Mersenne Twister
    /// and all), its first samples the validation set and the rest the training set, in that order. So a model
    /// trained here and one trained by scikit-learn see the same rows.
    public func split(validationFraction: Double, seed: UInt64) -> (train: Dataset, validation: Dataset) {
        precondition(validationFraction > 0 && validationFraction < 1,
                     "Dataset.split: validationFraction must be in (0, 1), got \(validationFraction)")
        let validationCount = Int((validationFraction * Double(count)).rounded(.up))
        precondition(validationCount >= 1 && validationCount < count,
                     "Dataset.split: \(count) samples cannot give \(validationCount) validation samples and a training set")
        var random = NumPyRandomState(seed: UInt32(truncatingIfNeeded: seed))
        let order = random.permutation(count)
        return (subset(order[validationCount...]), subset(order[..<validationCount]))
    }

    /// The data set with every feature (and, if `standardization` has them, every target) shifted and scaled:
    /// `x′ = (x − mean) / scale`. A `NaN` feature (a missing cell kept by `imputeMissing`) is imputed by the mean of
    /// the data the standardisation was computed on: it becomes `(fill − mean) / scale` with the feature's
    /// ``Standardization/featureFills`` (0 for a standardised feature; for a one-hot input of a text column, the
    /// share of that category), or 0 when the standardisation has no fills. Image bytes become floats.
    public func standardized(by standardization: Standardization) -> Dataset {
        precondition(standardization.featureMeans.count == featureCount && standardization.featureScales.count == featureCount
                     && (standardization.featureFills?.count ?? featureCount) == featureCount,
                     "Dataset.standardized: a standardization of \(standardization.featureMeans.count) means, \(standardization.featureScales.count) scales and \(standardization.featureFills.map { "\($0.count)" } ?? "no") fills for \(featureCount) features")
        var result = self
        var values = floatFeatures()
        result.features = .bytes([])  // the array is now only referenced here: changed in place
        let f = featureCount
        values.withUnsafeMutableBufferPointer { values in
            for j in 0..<f {
                let mean = standardization.featureMeans[j], scale = standardization.featureScales[j]
                let missing = standardization.featureFills.map { ($0[j] - mean) / scale } ?? 0
                var i = j
                while i < values.count {
                    let x = values[i]
                    values[i] = x.isNaN ? missing : (x - mean) / scale
                    i += f
                }
            }
        }
        result.features = .floats(values)
        if let means = standardization.targetMeans, let scales = standardization.targetScales,
           case .values(var targetValues, let width) = targets {
            precondition(means.count == width, "Dataset.standardized: a standardization of \(means.count) targets for \(width)")
            result.targets = .labels([])
            for i in targetValues.indices { targetValues[i] = (targetValues[i] - means[i % width]) / scales[i % width] }
            result.targets = .values(targetValues, width: width)
        }
        return result
    }

    /// The features as `Float`s (image bytes scaled to [0, 1]), row-major.
    func floatFeatures() -> [Float] {
        switch features {
        case .floats(let values): values
        case .bytes(let bytes): bytes.map { Float($0) / 255 }
        }
    }

    /// The real-valued targets (`count × targetWidth`), or `nil` for class labels.
    public var targetValues: [Float]? {
        if case .values(let values, _) = targets { values } else { nil }
    }

    /// Batches of `size` samples (the last may be smaller), in a seeded random order or in order when `seed` is
    /// `nil`: `for (input, targets) in data.batches(size: 64, seed: 1) { … }`.
    ///
    /// Each batch is a pair of matrices, `n × featureCount` and `n × targetWidth` (one-hot rows for labels). The
    /// iterator allocates its pair once and writes every batch into it, so a batch's matrices are overwritten by
    /// the next one: copy them (``Matrix/copy()``) to keep them.
    public func batches(size: Int, seed: UInt64? = nil) -> Batches {
        precondition(size > 0, "Dataset.batches: the size must be positive, got \(size)")
        return Batches(data: self, size: size, seed: seed)
    }

    /// The batches of a data set (see ``Dataset/batches(size:seed:)``).
    public struct Batches: Sequence, Sendable {
        let data: Dataset
        let size: Int
        let seed: UInt64?

        /// An iterator over the batches, with its pair of matrices (and, with a seed, a new shuffled order).
        public func makeIterator() -> Iterator {
            var order = Array(0..<data.count)
            if let seed {
                var generator = SeededGenerator(seed: seed)
                order.shuffle(using: &generator)
            }
            let n = Swift.min(size, Swift.max(data.count, 1))
            return Iterator(data: data, order: order, size: size,
                            input: Matrix(rows: n, columns: data.featureCount), targets: Matrix(rows: n, columns: data.targetWidth))
        }

        /// Yields one batch after another into the same pair of matrices.
        public struct Iterator: IteratorProtocol {
            let data: Dataset
            let order: [Int]
            let size: Int
            let input: Matrix, targets: Matrix
            var position = 0

            /// The next batch, written into the iterator's matrices (views of its first rows), or `nil` at the end.
            public mutating func next() -> (input: Matrix, targets: Matrix)? {
                guard position < order.count else { return nil }
                let end = Swift.min(position + size, order.count), n = end - position
                let batch = (input: input.rows(0..<n), targets: targets.rows(0..<n))
                data.gather(at: order[position..<end], input: batch.input, targets: batch.targets)
                position = end
                return batch
            }
        }
    }
}

/// The mean and scale of each feature (and optionally each real-valued target) of a data set, for
/// ``Dataset/standardized(by:)``: scikit-learn's `StandardScaler`.
///
/// Computed from the training split and applied unchanged to validation, test and prediction data. The scale is
/// the population standard deviation (divided by `n`, as `StandardScaler`), or 1 where that is 0; means and
/// deviations are summed in `Double` and ignore `NaN` (missing) values.
public struct Standardization: Codable, Sendable, Equatable {
    /// The mean of each feature (0 for a feature left as it is).
    public var featureMeans: [Float]
    /// The scale of each feature: its standard deviation, or 1.
    public var featureScales: [Float]
    /// The value a missing (`NaN`) feature stands for: the mean of the feature's known values in the data the
    /// standardisation was computed on, also for a feature it leaves as it is (a one-hot input: the share of its
    /// category). `nil` in standardisations saved before there were fills: a missing feature is then its mean.
    public var featureFills: [Float]?
    /// The mean of each real-valued target; `nil` leaves the targets as they are.
    public var targetMeans: [Float]?
    /// The scale of each real-valued target; `nil` with ``targetMeans``.
    public var targetScales: [Float]?

    /// A standardisation of these means and scales (saved ones, say).
    public init(featureMeans: [Float], featureScales: [Float], targetMeans: [Float]? = nil, targetScales: [Float]? = nil,
                featureFills: [Float]? = nil) {
        precondition(featureMeans.count == featureScales.count && targetMeans?.count == targetScales?.count,
                     "Standardization: as many means as scales")
        precondition(featureFills == nil || featureFills?.count == featureMeans.count, "Standardization: a fill per feature")
        self.featureMeans = featureMeans
        self.featureScales = featureScales
        self.featureFills = featureFills
        self.targetMeans = targetMeans
        self.targetScales = targetScales
    }

    /// The means and deviations of `data`'s features, except those where `standardizes[j]` is false (left as
    /// they are: mean 0, scale 1; one-hot columns, say), and of its targets if `targets` is true and they are
    /// real values; and every feature's mean as its ``featureFills``.
    public init(of data: Dataset, standardizes: [Bool]? = nil, targets: Bool = false) {
        let f = data.featureCount
        let values = data.floatFeatures()
        var sums = [Double](repeating: 0, count: f), counts = [Int](repeating: 0, count: f)
        for i in 0..<data.count {
            for j in 0..<f { let x = values[i * f + j]; if !x.isNaN { sums[j] += Double(x); counts[j] += 1 } }
        }
        let means = (0..<f).map { counts[$0] == 0 ? 0 : sums[$0] / Double(counts[$0]) }
        var squares = [Double](repeating: 0, count: f)
        for i in 0..<data.count {
            for j in 0..<f { let x = values[i * f + j]; if !x.isNaN { let d = Double(x) - means[j]; squares[j] += d * d } }
        }
        let scales = (0..<f).map { j -> Float in
            let s = counts[j] == 0 ? 0 : (squares[j] / Double(counts[j])).squareRoot()
            return s > 0 && s.isFinite ? Float(s) : 1
        }
        featureMeans = means.map { Float($0) }
        featureScales = scales
        featureFills = featureMeans
        if let standardizes {
            for j in 0..<f where !standardizes[j] { featureMeans[j] = 0; featureScales[j] = 1 }
        }
        if targets, case .values(let t, let width) = data.targets {
            var tm = [Double](repeating: 0, count: width), ts = [Double](repeating: 0, count: width)
            for i in t.indices { tm[i % width] += Double(t[i]) }
            tm = tm.map { $0 / Double(max(data.count, 1)) }
            for i in t.indices { let d = Double(t[i]) - tm[i % width]; ts[i % width] += d * d }
            targetMeans = tm.map { Float($0) }
            targetScales = ts.map { let s = ($0 / Double(max(data.count, 1))).squareRoot(); return s > 0 ? Float(s) : 1 }
        }
    }

    /// Real-valued targets in their original units: `y = y′ · scale + mean` for each element of `standardized`
    /// (`n × targetWidth`), in place. Does nothing if the targets were not standardised.
    public func restoreTargets(_ standardized: Matrix) {
        guard let means = targetMeans, let scales = targetScales else { return }
        precondition(standardized.columns == means.count, "Standardization.restoreTargets: \(standardized.shapeDescription) for \(means.count) targets")
        for i in 0..<standardized.rows {
            for j in 0..<standardized.columns { standardized[i, j] = standardized[i, j] * scales[j] + means[j] }
        }
    }
}

/// NumPy's legacy `RandomState` (MT19937 seeded by `init_genrand`), as far as `permutation` needs it: the source
/// of scikit-learn's seeded splits.
struct NumPyRandomState {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    init(seed: UInt32) {
        state[0] = seed
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    mutating func nextUInt32() -> UInt32 {
        if index >= 624 {
            for i in 0..<624 {
                let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
                state[i] = state[(i + 397) % 624] ^ (y >> 1) ^ (y & 1 == 0 ? 0 : 0x9908_B0DF)
            }
            index = 0
        }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// A uniform integer in `0...maximum` by NumPy's masked rejection (`random_interval`).
    mutating func interval(_ maximum: Int) -> Int {
        if maximum == 0 { return 0 }
        var mask = UInt64(maximum)
        mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16; mask |= mask >> 32
        if maximum <= 0xFFFF_FFFF {
            while true { let value = UInt64(nextUInt32()) & mask; if value <= UInt64(maximum) { return Int(value) } }
        }
        while true {
            let value = ((UInt64(nextUInt32()) << 32) | UInt64(nextUInt32())) & mask
            if value <= UInt64(maximum) { return Int(value) }
        }
    }

    /// `RandomState.permutation(n)`: `0..<n` shuffled by NumPy's Fisher–Yates (from the end).
    mutating func permutation(_ n: Int) -> [Int] {
        var values = Array(0..<n)
        var i = n - 1
        while i > 0 {
            let j = interval(i)
            values.swapAt(i, j)
            i -= 1
        }
        return values
    }
}
