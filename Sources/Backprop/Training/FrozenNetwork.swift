import CSIMD

/// A network's parameters fixed for serving: a copy of the network in which every dense layer's weight is packed once
/// for Backprop's own product kernel, so that an inference call packs nothing.
///
/// `sgemm` packs both operands at every call. For a network that only infers, the weights never change, so
/// `FrozenNetwork` packs each top-level ``Dense`` layer's `W` (`inputSize × outputSize`) into panels of 32 columns
/// (``bp_pack_panels``) when it is made, and its forward pass computes `Z = X·W + b` from them
/// (``bp_gemm_panels`` on AVX-512, ``bp_gemm_panels_avx2`` on AVX2 and FMA) for batches of four rows or more. A batch
/// of one to three rows is one matrix-vector product per row (`sgemv`) on a row-major copy of `W`, which streams the
/// weight once and is faster there. Layers other than top-level `Dense` ones (and dense layers inside containers) run
/// as in the network. On a CPU without AVX2 every dense layer uses `sgemm` on its copy.
///
/// The copy is a snapshot: training the original network afterwards does not change a frozen one (freeze it again).
/// Its outputs equal the network's in evaluation mode up to rounding (the products sum in another order; about
/// 1e-6 relative). A frozen network has no gradients and cannot be trained. Like a ``Network`` it keeps no activations:
/// any number of tasks may infer with one frozen network at once, each with its own ``Workspace``
/// (``Workspace/init(for:capacity:)``). It holds each packed dense weight twice (panels and row-major copy).
///
/// ```swift
/// let (network, _) = try Checkpoint.load(from: "model.safetensors")
/// let model = network.frozen()                        // once, at start-up
/// let workspace = Workspace(for: model, capacity: 32)  // one per serving thread
/// let logits = model.forward(batch, workspace: workspace)  // allocates nothing
/// ```
public final class FrozenNetwork: Sendable {
    /// The copy whose dense layers are ``PackedDense`` layers.
    let network: Network

    /// Freezes `network` as it is now. Its layers are copied through their saved form (``Checkpoint/file(for:metadata:)``),
    /// so state outside the parameters, such as batch normalization's running statistics, is copied too; a network
    /// with a layer that cannot be saved (a custom layer that is not ``SavableLayer``) has its parameters copied and
    /// shares that layer's other state with `network`.
    public init(_ network: Network) {
        let copy = (try? Checkpoint.network(from: Checkpoint.file(for: network), path: "the frozen copy").network) ?? network
        let layers: [any Layer] = copy.layers.map { layer in
            if let dense = layer as? Dense { return PackedDense(dense) }
            return layer
        }
        self.network = Network(inputSize: network.inputSize, layers: layers, names: network.body.names)  // copies
    }

    /// The number of input features.
    public var inputSize: Int { network.inputSize }
    /// The number of output features.
    public var outputSize: Int { network.outputSize }
    /// The number of features each layer outputs.
    public var layerOutputSizes: [Int] { network.layerOutputSizes }
    /// The number of top-level dense layers whose weights are packed for Backprop's own kernel (0 on a CPU without
    /// AVX2 and FMA).
    public var packedLayerCount: Int {
        network.layers.count { ($0 as? PackedDense)?.panels != nil }
    }

    /// The forward pass in evaluation mode on `input` (`N × inputSize`, `N ≤ workspace.capacity`): a view of the output
    /// (`N × outputSize`) in `workspace`, valid until its next use. Changes nothing; allocates nothing.
    @discardableResult
    public func forward(_ input: Matrix, workspace: Workspace) -> Matrix {
        network.forward(input, workspace: workspace)
    }

    /// The output for `input`, computed with a workspace of its own (allocates; for convenience).
    public func callAsFunction(_ input: Matrix) -> Matrix {
        network(input)
    }
}

extension Network {
    /// This network's parameters as they are now, packed for inference: ``FrozenNetwork``.
    public func frozen() -> FrozenNetwork { FrozenNetwork(self) }
}

extension Workspace {
    /// The memory of a frozen network's forward passes at batches of up to `capacity` rows (no room for a backward
    /// pass). One per thread.
    public convenience init(for frozen: FrozenNetwork, capacity: Int) {
        self.init(for: frozen.network, capacity: capacity, backward: false)
    }
}

/// A ``Dense`` layer fixed for inference: `Z = X·W + b` with `W` packed once into panels (``PackedOperand``), plus a
/// row-major copy of `W` for batches of fewer than four rows (and for CPUs without a panel kernel). It has no
/// trainable parameters (the network that holds it has no gradients for it) and no backward pass.
struct PackedDense: Layer {
    let inputSize: Int, outputSize: Int
    /// `W`, `inputSize × outputSize`, and `b`, `1 × outputSize`: copies, in one storage of their own.
    let weight: Matrix, bias: Matrix
    /// `W` in panels of 32 columns (``bp_pack_panels``), or nil where the CPU runs no panel kernel.
    let panels: Matrix?

    /// The fewest rows the panel kernel takes: below, its tiles have too few independent sums to keep the
    /// multiply-add units busy, and one `sgemv` per row, which streams `W` once, is faster.
    static let fewestPanelRows = 4

    init(_ dense: Dense, panels usePanels: Bool = PackedOperand.panelKernelAvailable) {
        (inputSize, outputSize) = (dense.inputSize, dense.outputSize)
        weight = dense.weight.copy()
        bias = dense.bias.copy()
        if usePanels {
            let storage = Matrix(rows: 1, columns: PackedOperand.storageCount(k: inputSize, n: outputSize))
            bp_pack_panels(storage.pointer, weight.pointer, inputSize, outputSize, outputSize, 0)
            panels = storage
        } else {
            panels = nil
        }
    }

    func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(inputSize == self.inputSize,
                     "PackedDense: this layer takes \(self.inputSize) input features, was given \(inputSize)")
        return outputSize
    }

    var parameters: [Matrix] { [] }
    var parameterGradients: [Matrix] { [] }
    mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        precondition(parameters.isEmpty && gradients.isEmpty, "PackedDense.bind: a frozen layer has no parameters to bind")
    }
    func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {}

    /// `Z = X·W + b`: `b` is copied into every row of `Z`, then `X·W` is added, from the panels split between the
    /// threads by blocks of 32 columns, or by `gemm` on the row-major copy.
    func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(input.columns == inputSize && output.columns == outputSize && output.rows == input.rows,
                     "PackedDense.forward: input \(input.shapeDescription) and output \(output.shapeDescription) do not fit weight \(weight.shapeDescription)")
        broadcastRows(output, row: bias)
        let m = input.rows
        guard let panels, m >= Self.fewestPanelRows else {
            if m > 0 { gemm(output, input, weight, beta: 1) }
            return
        }
        let width = Int(BP_PANEL_WIDTH)
        let blocks = (outputSize + width - 1) / width
        let parts = min(blocks, Parallel.partCount(for: m * inputSize * outputSize, minimumPerPart: 1 << 20))
        var job = PanelProduct(m: m, n: outputSize, k: inputSize, a: input.pointer, lda: input.columns,
                               panels: panels.pointer, c: output.pointer, ldc: output.columns)
        Parallel.run(parts: parts, context: &job) { context, part, parts in
            let job = context.load(as: PanelProduct.self)
            let columns = Parallel.chunk(part, of: parts, count: job.n, alignment: Int(BP_PANEL_WIDTH))
            if columns.isEmpty { return }
            let b = job.panels + columns.lowerBound * job.k  // panel q starts at 32q·k
            if PackedOperand.unpackedKernelAvailable {
                bp_gemm_panels(job.m, columns.count, job.k, job.a, job.lda, b, job.c + columns.lowerBound, job.ldc, 1)
            } else {
                bp_gemm_panels_avx2(job.m, columns.count, job.k, job.a, job.lda, b, job.c + columns.lowerBound, job.ldc, 1)
            }
        }
    }

    func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        preconditionFailure("PackedDense.backward: a frozen network does not train; train the Network it was frozen from")
    }
}

/// One panel product's arguments, for the threads that each compute a block of columns of C.
private struct PanelProduct {
    var m: Int, n: Int, k: Int
    var a: UnsafePointer<Float>, lda: Int
    var panels: UnsafePointer<Float>
    var c: UnsafeMutablePointer<Float>, ldc: Int
}
