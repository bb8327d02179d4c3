@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// A user's own layer, as a user would write it: a learnable per-feature scale `y = x ∘ s` (`s` is `1 × F`,
/// starting at 1). Backward: `∂L/∂s += Σₙ dy ∘ x`, `dx = dy ∘ s`.
struct FeatureScale: SavableLayer {
    struct Settings: Codable, Sendable { var featureCount: Int }
    static let typeName = "test-feature-scale"
    private(set) var scale: Matrix
    private(set) var scaleGradient: Matrix

    init(featureCount: Int) {
        scale = Matrix(rows: 1, columns: featureCount)
        scale.fill(1)
        scaleGradient = Matrix(rows: 1, columns: featureCount)
    }
    init(settings: Settings) throws {
        guard settings.featureCount > 0 else { throw InvalidLayerSettings("feature count \(settings.featureCount)") }
        self.init(featureCount: settings.featureCount)
    }
    var settings: Settings { Settings(featureCount: scale.columns) }

    func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(inputSize == scale.columns, "FeatureScale: \(scale.columns) features, given \(inputSize)")
        return inputSize
    }
    func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? { inputSize == scale.columns ? inputSize : nil }
    var parameters: [Matrix] { [scale] }
    var parameterGradients: [Matrix] { [scaleGradient] }
    var parameterNames: [TensorName] { [TensorName("weight", shape: [scale.columns])] }
    mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        parameters[0].assign(scale)
        (scale, scaleGradient) = (parameters[0], gradients[0])
    }
    func forward(output: Matrix, input: Matrix, context: LayerContext) {
        let f = scale.columns
        for i in 0..<input.rows { for j in 0..<f { output[i, j] = input[i, j] * scale[0, j] } }
    }
    func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        let f = scale.columns
        for i in 0..<input.rows {
            for j in 0..<f {
                scaleGradient[0, j] += dOutput[i, j] * input[i, j]
                if let dInput { dInput[i, j] = dOutput[i, j] * scale[0, j] }
            }
        }
    }
}

@Suite("Layer contract: one pass pair, mode per call, containers, open saving")
struct LayerContractTests {
    static let image = ImageShape(channels: 2, height: 5, width: 5)

    /// Every built-in layer and container, with an input it takes.
    static func layers() -> [(String, any Layer, Matrix)] {
        let x4 = randomMatrix(6, 4, seed: 1, in: -1.5...1.5)
        let image = randomMatrix(3, Self.image.count, seed: 2)
        let conv = Conv2D(input: Self.image, outputChannels: 3, kernelSize: 3, padding: 1, seed: 3)
        return [
            ("dense", Dense(inputSize: 4, outputSize: 3, seed: 4), x4),
            ("sigmoid", Sigmoid(), x4), ("relu", ReLU(), x4), ("tanh", Tanh(), x4),
            ("leaky-relu", LeakyReLU(negativeSlope: 0.1), x4), ("elu", ELU(), x4), ("gelu", GELU(), x4),
            ("softmax", Softmax(), x4), ("log-softmax", LogSoftmax(), x4),
            ("dropout", Dropout(probability: 0.3, seed: 5), x4),
            ("batch-norm", BatchNorm(featureCount: 4), x4),
            ("sequential", Sequential([Dense(inputSize: 4, outputSize: 5, seed: 6), Tanh(), BatchNorm(featureCount: 5),
                                       Dropout(probability: 0.2, seed: 7), Dense(inputSize: 5, outputSize: 2, seed: 8)]), x4),
            ("residual", Residual([Dense(inputSize: 4, outputSize: 4, seed: 9), BatchNorm(featureCount: 4), Tanh(),
                                   Dropout(probability: 0.25, seed: 10)]), x4),
            ("conv2d (3 rows, patches kept from the forward pass)", conv, image),
            ("max pool", Pool2D(.max, input: Self.image, kernelSize: 2), image),
            ("average pool", Pool2D(.average, input: Self.image, kernelSize: 2), image),
            ("flatten", Flatten(), x4),
            ("user's feature scale", FeatureScale(featureCount: 4), x4),
        ]
    }

    @Test func everyLayersPassesPassTheGradientCheckWhenCalledDirectly() {
        for (name, layer, x) in Self.layers() {
            for mode in [LayerContext.Mode.training, .evaluation] {
                let result = gradientCheck(layer, input: x, mode: mode, randomIndex: 3)
                #expect(result.passes(tolerance: 2e-2), "\(name), \(mode): \(result)")
                // Every parameter gradient is reached (the old convolution's plain backward left dW at zero).
                for (k, gradient) in layer.parameterGradients.enumerated() where !(name == "batch-norm" && mode == .evaluation && k == 0) {
                    #expect(gradient.scalars.contains { $0 != 0 }, "\(name), \(mode): gradient \(k) is all zero")
                }
            }
        }
    }

    @Test func aDroppedDerivativeFailsTheCheck() {
        // The check can fail: the feature scale's backward pass with dx = dy (no ∘ s) is caught.
        struct Broken: Layer {
            var inner = FeatureScale(featureCount: 4)
            func outputSize(forInputSize inputSize: Int) -> Int { inputSize }
            var parameters: [Matrix] { inner.parameters }
            var parameterGradients: [Matrix] { inner.parameterGradients }
            func forward(output: Matrix, input: Matrix, context: LayerContext) { inner.forward(output: output, input: input, context: context) }
            func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
                inner.backward(dInput: nil, dOutput: dOutput, input: input, output: output, context: context)
                dInput?.assign(dOutput)
            }
        }
        let broken = Broken()
        broken.inner.scale.assign(Matrix(rows: 1, columns: 4, values: [2, 0.5, -1, 3]))
        #expect(!gradientCheck(broken, input: randomMatrix(3, 4, seed: 1)).passes(tolerance: 2e-2))
    }

    /// A network with every kind of state a layer can have: batch norm, dropout, a convolution, a residual block.
    static func statefulNetwork() -> Network {
        let image = ImageShape(channels: 1, height: 6, width: 6)
        let conv = Conv2D(input: image, outputChannels: 4, kernelSize: 3, padding: 1, seed: 1)
        let pool = Pool2D(.max, input: conv.output)
        return Network(inputSize: image.count, layers: [
            conv, ReLU(), pool, Flatten(), Dense(inputSize: pool.output.count, outputSize: 16, seed: 2), BatchNorm(featureCount: 16),
            ReLU(), Dropout(probability: 0.5, seed: 3),
            Residual([Dense(inputSize: 16, outputSize: 16, seed: 4), BatchNorm(featureCount: 16), Tanh()]),
            Dense(inputSize: 16, outputSize: 3, seed: 5),
        ])
    }

    static func trainedStatefulNetwork() throws -> Network {
        let network = statefulNetwork()
        let x = randomMatrix(40, 36, seed: 6)
        let targets = oneHot((0..<40).map { $0 % 3 }, classCount: 3)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.1), batchSize: 40)
        for _ in 0..<3 { try trainer.trainStep(input: x, targets: targets) }
        return network
    }

    @Test func inferenceChangesNothingAndIsInEvaluationMode() throws {
        let folder = TemporaryFolder()
        let path = "\(folder.path)/m.safetensors"
        try Self.trainedStatefulNetwork().save(to: path)
        let loaded = try Network.load(from: path)
        let before = loaded.stateDict
        let x = randomMatrix(100, 36, seed: 7)
        let first = loaded(x)
        #expect(loaded.stateDict == before, "inference changed the running statistics")
        #expect(loaded(x) == first, "inference is not repeatable (dropout or batch statistics in use)")
        // Evaluation mode by hand gives the same as the default.
        let workspace = Workspace(for: loaded, capacity: 100)
        #expect(loaded.forward(x, workspace: workspace, mode: .evaluation) == first)
        #expect(loaded.forward(x, workspace: workspace, mode: .training, randomIndex: 1) != first)
    }

    @Test func eightTasksInferAtOnceBitwiseAsSerial() async throws {
        let network = try Self.trainedStatefulNetwork()
        let inputs = (0..<8).map { randomMatrix(64, 36, seed: 100 + UInt64($0)) }
        let serial = inputs.map { network($0) }
        let concurrent = await withTaskGroup(of: (Int, [Float]).self) { group in
            for (k, x) in inputs.enumerated() {
                group.addTask {
                    var last: [Float] = []
                    for _ in 0..<20 { last = network(x).scalars }  // overlap the tasks for a while
                    return (k, last)
                }
            }
            var results = [[Float]](repeating: [], count: 8)
            for await (k, output) in group { results[k] = output }
            return results
        }
        for k in 0..<8 {
            #expect(concurrent[k].map(\.bitPattern) == serial[k].scalars.map(\.bitPattern), "task \(k)")
        }
    }

    @Test func containersExposeChildrenAndPyTorchNames() {
        let network = Self.statefulNetwork()
        #expect(network.stateDict.map(\.name) == [
            "0.weight", "0.bias", "4.weight", "4.bias", "5.weight", "5.bias", "5.running_mean", "5.running_var",
            "5.num_batches_tracked", "8.body.0.weight", "8.body.0.bias", "8.body.1.weight", "8.body.1.bias",
            "8.body.1.running_mean", "8.body.1.running_var", "8.body.1.num_batches_tracked", "9.weight", "9.bias",
        ])
        #expect(network.stateDict.first { $0.name == "4.weight" }?.shape == [16, 36])
        let residual = network.layers[8]
        #expect(residual.children.map(\.name) == ["body"])
        #expect(residual.children[0].layer.children.map(\.name) == ["0", "1", "2"])
    }

    @Test func aUsersLayerTrainsSavesAndLoads() throws {
        LayerRegistry.register(FeatureScale.self)
        let folder = TemporaryFolder()
        let network = Network(inputSize: 4, layers: [FeatureScale(featureCount: 4), Dense(inputSize: 4, outputSize: 2, seed: 1)])
        let x = randomMatrix(32, 4, seed: 2), targets = oneHot((0..<32).map { $0 % 2 }, classCount: 2)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: Adam(learningRate: 0.05), batchSize: 32)
        let first = try trainer.trainStep(input: x, targets: targets)
        for _ in 0..<20 { try trainer.trainStep(input: x, targets: targets) }
        #expect(try trainer.trainStep(input: x, targets: targets) < first)
        #expect((network.layers[0] as! FeatureScale).scale.scalars != [1, 1, 1, 1], "the scale was trained")
        let path = "\(folder.path)/scale.safetensors"
        try network.save(to: path)
        let file = try SafetensorsFile(contentsOf: path)
        #expect(file.tensors["0.weight"]?.shape == [4])
        #expect(file.metadata[Checkpoint.Key.layers]?.contains("\"type\":\"test-feature-scale\"") == true)
        let loaded = try Network.load(from: path)
        #expect(loaded(x).scalars.map(\.bitPattern) == network(x).scalars.map(\.bitPattern))
    }

    @Test func aUsersLayerLoadsInAFreshProcess() async throws {
        LayerRegistry.register(FeatureScale.self)
        let folder = TemporaryFolder()
        let network = Network(inputSize: 4, layers: [FeatureScale(featureCount: 4), Dense(inputSize: 4, outputSize: 2, seed: 1)])
        (network.layers[0] as! FeatureScale).scale.assign(Matrix(rows: 1, columns: 4, values: [0.5, -2, 1.25, 3]))
        try network.save(to: "\(folder.path)/scale.safetensors")
        let x = randomMatrix(5, 4, seed: 9)
        try Data(network(x).scalars.map(\.bitPattern).map(String.init).joined(separator: ",").utf8)
            .write(to: URL(fileURLWithPath: "\(folder.path)/expected"))
        setenv("BACKPROP_TEST_FOLDER", folder.path, 1)
        await #expect(processExitsWith: .success) { @Sendable () async in
            // A new process: nothing registered yet, so loading fails until the type is registered.
            let folder = ProcessInfo.processInfo.environment["BACKPROP_TEST_FOLDER"]!
            do throws(CheckpointError) {
                _ = try Network.load(from: "\(folder)/scale.safetensors")
                exit(2)
            } catch {
                guard case .invalidArchitecture(_, let reason) = error, reason.contains("test-feature-scale") else { exit(3) }
            }
            LayerRegistry.register(FeatureScale.self)
            let loaded = try! Network.load(from: "\(folder)/scale.safetensors")
            let output = loaded(randomMatrix(5, 4, seed: 9)).scalars.map(\.bitPattern).map(String.init).joined(separator: ",")
            let expected = try! String(contentsOfFile: "\(folder)/expected", encoding: .utf8)
            exit(output == expected ? 0 : 1)
        }
    }

    @Test func savingWithoutRegisteringNamesTheLayer() {
        struct Unsaved: Layer {
            func outputSize(forInputSize inputSize: Int) -> Int { inputSize }
            func forward(output: Matrix, input: Matrix, context: LayerContext) { output.assign(input) }
            func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) { dInput?.assign(dOutput) }
        }
        let network = Network(inputSize: 2, layers: [Residual([Unsaved()])])
        #expect(throws: CheckpointError.unsupportedLayer(type: "Unsaved")) { try Checkpoint.file(for: network) }
    }

    @Test func identicalNetworksWriteIdenticalBytes() throws {
        let folder = TemporaryFolder()
        func run(_ name: String) throws -> Data {
            let network = try Parallel.withThreadCount(1) { try Self.trainedStatefulNetwork() }
            try network.save(to: "\(folder.path)/\(name)", metadata: ["b": "2", "a": "1", "c": "3", "z": "0"])
            return try Data(contentsOf: URL(fileURLWithPath: "\(folder.path)/\(name)"))
        }
        #expect(try run("one.safetensors") == run("two.safetensors"))
    }

    @Test func oneSeedInitializesTheWholeNetwork() {
        func layers() -> [any Layer] {
            [Dense(inputSize: 3, outputSize: 3), Residual([Dense(inputSize: 3, outputSize: 3), BatchNorm(featureCount: 3)]),
             Dense(inputSize: 3, outputSize: 3)]
        }
        let a = Network(inputSize: 3, layers: layers(), initializer: .heNormal, seed: 7)
        let b = Network(inputSize: 3, layers: layers(), initializer: .heNormal, seed: 7)
        let c = Network(inputSize: 3, layers: layers(), initializer: .heNormal, seed: 8)
        #expect(a.parameters == b.parameters && a.parameters != c.parameters)
        // Layers built without a seed start apart.
        #expect(Dense(inputSize: 3, outputSize: 3).weight != Dense(inputSize: 3, outputSize: 3).weight)
        #expect(Dropout(probability: 0.5).seed != Dropout(probability: 0.5).seed)
        // Same-shaped layers inside one seeded network differ too.
        let weights = a.stateDict.filter { $0.name.hasSuffix("0.weight") && $0.shape == [3, 3] }.map(\.values)
        #expect(Set(weights.map { $0.map(\.bitPattern) }).count == weights.count)
    }

    @Test func misusedPassesStopWithTheShapes() async {
        func message(_ result: ExitTest.Result?) -> String { String(decoding: result?.standardErrorContent ?? [], as: UTF8.self) }
        var result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            // Max pooling keeps indices in its scratch: none given.
            let pool = Pool2D(.max, input: ImageShape(channels: 1, height: 8, width: 8))
            pool.forward(output: Matrix(rows: 64, columns: 16), input: Matrix(rows: 64, columns: 64), context: LayerContext())
        }
        #expect(message(result).contains("Pool2D.forward: needs 1024 floats of scratch for 64 rows, was given 0"), "\(message(result))")
        result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let conv = Conv2D(input: ImageShape(channels: 1, height: 4, width: 4), outputChannels: 2, kernelSize: 3, seed: 1)
            conv.backward(dInput: Matrix(rows: 1, columns: 3), dOutput: Matrix(rows: 4, columns: 8), input: Matrix(rows: 4, columns: 16),
                          output: Matrix(rows: 4, columns: 8), context: LayerContext(scratch: Matrix(rows: 1, columns: 1000)))
        }
        #expect(message(result).contains("Conv2D.backward (dInput, input): shapes 1×3 and 4×16 differ"), "\(message(result))")
        result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let network = Network(sizes: [3, 2], activation: .relu, initializer: .heNormal, seed: 1)
            let workspace = Workspace(for: network, capacity: 4)
            network.forward(Matrix(rows: 2, columns: 3), workspace: workspace, mode: .training)
            network.backward(Matrix(rows: 4, columns: 3), workspace: workspace)
        }
        #expect(message(result).contains("the forward pass on this workspace had 2 rows, this input 4×3 has 4"), "\(message(result))")
        result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let context = LayerContext(scratch: Matrix(rows: 1, columns: 10))
            _ = context.scratch(rows: 1, columns: 2, offset: -1)
        }
        #expect(message(result).contains("does not fit 10 floats of scratch"), "\(message(result))")
    }

    /// A 300-byte file claiming a 16 384 × 16 384 dense layer is refused before anything is allocated: the loading
    /// process runs with 512 MB of address space to spare and must end with the error, not a crash.
    @Test func aFileClaimingHugeLayersFailsBeforeAllocating() async throws {
        let folder = TemporaryFolder()
        for (name, layers) in [("dense", #"[{"inputSize":16384,"outputSize":16384,"type":"dense"}]"#),
                               ("conv", #"[{"input":{"channels":1,"height":4,"width":4},"outputChannels":16777216,"kernelSize":3,"stride":1,"padding":1,"type":"conv2d"}]"#),
                               ("batch-norm", #"[{"featureCount":16777216,"epsilon":1e-5,"momentum":0.1,"type":"batch-norm"}]"#)] {
            let inputSize = name == "dense" ? 16384 : name == "conv" ? 16 : 16777216
            try SafetensorsFile(metadata: ["backprop.layers": layers, "backprop.input_size": "\(inputSize)"],
                                tensors: ["0.bias": .init(shape: [2], values: [0, 0])]).write(to: "\(folder.path)/\(name).safetensors")
        }
        setenv("BACKPROP_TEST_FOLDER", folder.path, 1)
        await #expect(processExitsWith: .success) { @Sendable () async in
            var limit = rlimit(rlim_cur: 0, rlim_max: 0)
            getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit)
            // Whatever the test process has mapped already, and 512 MB more.
            let mapped = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?.split(separator: " ").first.flatMap { Int($0) } ?? 0
            limit.rlim_cur = rlim_t(mapped * 4096 + 512 << 20)
            setrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit)
            let folder = ProcessInfo.processInfo.environment["BACKPROP_TEST_FOLDER"]!
            for name in ["dense", "conv", "batch-norm"] {
                do throws(CheckpointError) {
                    _ = try Network.load(from: "\(folder)/\(name).safetensors")
                    exit(2)
                } catch {
                    guard case .invalidArchitecture(_, let reason) = error, reason.contains("more than the file holds") else { exit(3) }
                }
            }
            exit(0)
        }
    }

    @Test func aUsersLayerThatDoesNotFitTheFilesInputSizeIsAnError() throws {
        LayerRegistry.register(FeatureScale.self)
        let folder = TemporaryFolder()
        let path = "\(folder.path)/scale.safetensors"
        try SafetensorsFile(metadata: ["backprop.layers": #"[{"featureCount":3,"type":"test-feature-scale"}]"#, "backprop.input_size": "5"],
                            tensors: ["0.weight": .init(shape: [3], values: [1, 2, 3])]).write(to: path)
        #expect(throws: CheckpointError.invalidArchitecture(path: path, reason: "layer 0 (FeatureScale) cannot take 5 inputs")) {
            try Network.load(from: path)
        }
    }
}
