import ArgumentParser
import Backprop
import BackpropMPI
import Foundation

/// `backprop train`: its options and how they become settings (the model is built in TrainModel.swift, the run is
/// in Train.swift).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a multilayer perceptron on an MNIST-format data set or on a CSV/TSV table.",
        discussion: """
            Trains with mini-batch gradient descent (full-batch with --batch-size 0) and reports, after every \
            epoch, the training loss, the test loss and accuracy, and the epoch's training time.
            --preset seed reproduces the original text's NumPy program: 784-64-10, sigmoid, a sigmoid output \
            with binary cross-entropy, N(0, 0.01²) weights, full-batch gradient descent, learning rate 0.1, \
            100 epochs. Flags given with it override it.
            Optimizers follow torch.optim's update equations and defaults: momentum and nesterov are SGD with \
            --momentum (default 0.9); --weight-decay is L2 added to the gradient (decoupled for adamw, default \
            0.01 there).
            With --data FILE.csv (or .tsv: any file rather than a folder) the network learns the table's target \
            column (--target, default the last) from its other columns (text columns one-hot encoded): \
            classification when the target holds text or integers, regression otherwise (or as --task says), \
            validated on a seeded split (--validation-fraction) or on --validation FILE, features (and a \
            regression target) standardised by the training split's mean and deviation. For tables the defaults \
            are scikit-learn's MLP: --layers auto-100-auto (auto: the table's inputs and outputs), adam 0.001, \
            batch 64, 200 epochs; regression trains with mean squared error and reports test_rmse, test_mae \
            and test_r2.
            """)

    @Option(help: "A folder with the four MNIST-format IDX files (.gz or raw), or a CSV or TSV table with a header row.")
    var data: String = Dataset.defaultDirectory

    @Option(help: "Tables: the target column. (default: the last column)")
    var target: String?

    @Option(help: "Tables: what the target asks for. (default: classification when the target holds text or integers, else regression)")
    var task: TableTask?

    @Option(parsing: .unconditional, help: "Tables: the fraction of rows held out (seeded by --seed, as scikit-learn's train_test_split) to report test metrics on. (default: 0.2)", transform: number)
    var validationFraction: Double?

    @Option(help: "Tables: a second table (same columns) to report test metrics on, instead of a split.")
    var validation: String?

    @Option(help: "Tables: mean fills an empty or NA feature cell from the training split: a number with its column's mean, a text cell's one-hot inputs with each category's share (default: such a cell is an error).")
    var impute: ImputeKind?

    @Option(help: "A preset of the settings below: seed (the original text's program).")
    var preset: Preset?

    @Option(help: "Layer sizes from input to output, e.g. 784-128-10. (default: 784-128-10)")
    var layers: String?

    @Option(help: "Hidden-layer activation. (default: relu)")
    var activation: ActivationKind?

    @Option(help: "Output loss: cross-entropy (softmax) or binary-cross-entropy (sigmoid outputs). (default: cross-entropy)")
    var loss: LossKind?

    @Option(help: "The optimizer. (default: sgd; adam for tables)")
    var optimizer: OptimizerKind?

    @Option(parsing: .unconditional, help: """
        The learning rate γ. (default: 0.1 for sgd, 0.01 for momentum, nesterov, adagrad and rmsprop, 1.0 for \
        adadelta, 0.001 for adam and adamw)
        """, transform: number)
    var learningRate: Float?

    @Option(parsing: .unconditional, help: "The momentum μ of the momentum and nesterov optimizers (and of rmsprop if given). (default: 0.9)", transform: number)
    var momentum: Float?

    @Option(parsing: .unconditional, help: "Weight decay λ: L2 added to the gradient; decoupled for adamw. (default: 0, 0.01 for adamw)", transform: number)
    var weightDecay: Float?

    @Option(help: "Learning-rate schedule per epoch.")
    var schedule: ScheduleKind = .none

    @Option(parsing: .unconditional, help: "step: epochs between decays. (default: a third of the epochs after warm-up)", transform: number)
    var stepSize: Int?

    @Option(parsing: .unconditional, help: "step and exponential: the decay factor. (default: 0.1 for step, 0.9 for exponential)", transform: number)
    var gamma: Float?

    @Option(parsing: .unconditional, help: "cosine: the final learning rate. (default: 0)", transform: number)
    var minLearningRate: Float = 0

    @Option(parsing: .unconditional, help: "Epochs of linear warm-up before the schedule: γ·(e+1)/(W+1) in epoch e < W. (default: 0)", transform: number)
    var warmupEpochs: Int = 0

    @Option(parsing: .unconditional, help: "Dropout probability after each hidden activation (0 = none). (default: 0)", transform: number)
    var dropout: Float = 0

    @Option(help: """
        mlp (the --layers network); cnn: conv 32 3×3 – activation – max pool 2 – conv 64 3×3 – activation – max pool 2 \
        – flatten – dense 128 – activation – dense (classes), for square one-channel images; rnn, lstm or gru: each image \
        read row by row (28 steps of 28 pixels), the last step's hidden state (--hidden) into a dense layer, named \
        rnn and head as in torch_rnn_rows.py.
        """)
    var model: ModelKind = .mlp

    @Option(name: .customLong("hidden"), parsing: .unconditional, help: "rnn, lstm and gru: the hidden state's size. (default: 128)", transform: number)
    var hiddenOption: Int?
    /// The hidden state's size of a recurrent model.
    var hidden: Int { hiddenOption ?? 128 }

    @Option(parsing: .unconditional, help: """
        rnn, lstm and gru: stacked recurrent layers, each above the first reading the one below's hidden states \
        (--dropout between them). (default: 1)
        """, transform: number)
    var numLayers: Int = 1

    @Flag(help: "rnn, lstm and gru: each layer also reads the rows bottom to top; the head reads both directions' last step.")
    var bidirectional = false

    @Flag(help: "Batch normalization (nn.BatchNorm1d) after each hidden dense layer, before its activation.")
    var batchNorm = false

    @Flag(help: "Wrap each hidden layer of equal width (dense, batch norm, activation) in a residual block x + f(x).")
    var residual = false

    @Option(parsing: .unconditional, help: "Samples per step; 0 = the whole training set (full-batch gradient descent). (default: 64)", transform: number)
    var batchSize: Int?

    @Option(parsing: .unconditional, help: "Passes over the training set. (default: 5; 200 for tables)", transform: number)
    var epochs: Int?

    @Option(parsing: .unconditional, help: "Seeds the weights, the shuffling and dropout. (default: 0)", transform: number)
    var seed: UInt64 = 0

    @Option(parsing: .unconditional, help: "Threads for the matrix products and element-wise work (1 gives bitwise-reproducible runs). (default: the CPUs this process may use)", transform: number)
    var threads: Int?

    @Option(name: .customLong("init"), help: """
        Weight initializer: \(Initializer.names.joined(separator: ", ")). normal001 is N(0, 0.01²), xavier and he \
        are uniform and normal, pytorch is nn.Linear's default, sklearn is scikit-learn's MLP (xavier uniform weights \
        and biases). (default: sklearn for tables; he for relu-like activations, xavier otherwise)
        """)
    var initializer: String?

    @Flag(help: "Print one JSON object per epoch on standard output.")
    var json = false

    @Flag(help: "Print nothing but errors (and the JSON lines, with --json).")
    var quiet = false

    @Option(help: "Save the trained model here, as a safetensors file that PyTorch loads (written atomically).")
    var output: String?

    @Option(help: "Write the training and test loss and accuracy per epoch here, as an SVG chart.")
    var plot: String?

    @Option(parsing: .unconditional, help: "Save a resumable checkpoint (model, optimizer state, epoch, generator) every N epochs.", transform: number)
    var checkpointEvery: Int?

    @Option(help: "Where --checkpoint-every writes.")
    var checkpoint: String = "checkpoint.safetensors"

    @Option(help: "Continue training from a checkpoint written by --checkpoint-every, up to --epochs in all.")
    var resume: String?

    @Option(parsing: .unconditional, help: "Scale the gradients down when their global L2 norm exceeds this (as torch's clip_grad_norm_).", transform: number)
    var clipNorm: Float?

    @Option(parsing: .unconditional, help: "Clamp every gradient element to [-X, X] before each step (as torch's clip_grad_value_).", transform: number)
    var clipValue: Float?

    @Flag(help: "Record each layer's mean gradient norm and update ratio ‖Δθ‖/‖θ‖ per epoch (JSON: grad_norms, update_ratios).")
    var logGradNorms = false

    @Flag(help: """
        Data-parallel training under mpirun: each rank trains on its shard of every batch (--batch-size is the \
        global batch) and the gradients are summed with one MPI_Allreduce per step; rank 0 alone prints and writes \
        files. Default --threads is 1 per rank.
        """)
    var distributed = false

    enum Preset: String, ExpressibleByArgument, CaseIterable { case seed }
    enum ImputeKind: String, ExpressibleByArgument, CaseIterable { case mean }
    enum ModelKind: String, ExpressibleByArgument, CaseIterable {
        case mlp, cnn, rnn, lstm, gru
        var isRecurrent: Bool { self == .rnn || self == .lstm || self == .gru }
    }
    enum LossKind: String, ExpressibleByArgument, CaseIterable {
        case crossEntropy = "cross-entropy", binaryCrossEntropy = "binary-cross-entropy"
    }
    enum OptimizerKind: String, ExpressibleByArgument, CaseIterable {
        case sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, adamw

        var defaultLearningRate: Float {
            switch self {
            case .sgd: 0.1
            case .momentum, .nesterov, .adagrad, .rmsprop: 0.01
            case .adadelta: 1.0
            case .adam, .adamw: 0.001
            }
        }
    }
    enum ScheduleKind: String, ExpressibleByArgument, CaseIterable { case none, step, exponential, cosine }

    /// The settings after applying the preset and the defaults.
    struct Settings {
        var sizes: [Int]
        var activation: ActivationKind
        var loss: LossKind
        var optimizer: OptimizerKind
        var learningRate: Float
        var batchSize: Int
        var epochs: Int
        var initializer: Initializer
    }

    /// Whether `--data` names a table (a file, or a path ending in .csv, .tsv, .tab or .txt) rather than a folder.
    var trainsOnTable: Bool { isTable(data) }

    /// The settings; `auto` sizes in `--layers` (tables only) become `auto`'s input and output sizes (1 until the
    /// table is read).
    func settings(auto: (inputs: Int, outputs: Int)? = nil) throws -> Settings {
        let seedPreset = preset == .seed, table = trainsOnTable
        let sizesText = layers ?? (seedPreset ? "784-64-10" : table ? "auto-100-auto" : "784-128-10")
        let tokens = sizesText.split(separator: "-", omittingEmptySubsequences: false)
        if !table && tokens.contains("auto") {
            throw ValidationError("--layers auto takes its size from a table (--data FILE.csv); give numbers for images, like 784-128-10")
        }
        let sizes = tokens.enumerated().compactMap { i, token -> Int? in
            guard token == "auto" else { return Int(token) }
            return i == 0 ? auto?.inputs ?? 1 : i == tokens.count - 1 ? auto?.outputs ?? 1 : nil
        }
        guard sizes.count >= 2, sizes.count == tokens.count, sizes.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--layers must be positive sizes joined by '-', like 784-128-10\(table ? " or auto-64-auto" : ""); got '\(sizesText)'")
        }
        if table {
            if preset != nil { throw ValidationError("--preset seed is for MNIST-format images, not tables") }
            if model != .mlp { throw ValidationError("--model \(model.rawValue) is for MNIST-format images; a table trains an mlp") }
            if task == .regression && loss != nil { throw ValidationError("--loss is for classification; regression trains with mean squared error") }
            if let validationFraction, !(validationFraction > 0 && validationFraction < 1) {
                throw ValidationError("--validation-fraction must be in (0, 1); got \(validationFraction)")
            }
            if validation != nil && validationFraction != nil {
                throw ValidationError("give --validation FILE or --validation-fraction, not both")
            }
        } else {
            for (given, flag) in [(target != nil, "--target"), (task != nil, "--task"), (validationFraction != nil, "--validation-fraction"),
                                  (validation != nil, "--validation"), (impute != nil, "--impute")] where given {
                throw ValidationError("\(flag) is for tables: give --data FILE.csv")
            }
        }
        let activation = activation ?? (seedPreset ? .sigmoid : .relu)
        let reluLike: Set<ActivationKind> = [.relu, .leakyRelu, .elu, .gelu, .geluTanh]
        let initializerName = initializer ?? (seedPreset ? "normal001" : table ? "sklearn" : reluLike.contains(activation) ? "he" : "xavier")
        guard let initializer = Initializer(name: initializerName) else {
            throw ValidationError("--init must be one of \(Initializer.names.joined(separator: ", ")); got '\(initializerName)'")
        }
        let optimizer = optimizer ?? (table ? .adam : .sgd)
        let settings = Settings(
            sizes: sizes, activation: activation,
            loss: loss ?? (seedPreset ? .binaryCrossEntropy : .crossEntropy),
            optimizer: optimizer,
            learningRate: learningRate ?? optimizer.defaultLearningRate,
            batchSize: batchSize ?? (seedPreset ? 0 : 64),
            epochs: epochs ?? (seedPreset ? 100 : table ? 200 : 5),
            initializer: initializer)
        guard settings.learningRate.isFinite && settings.learningRate > 0 else {
            throw ValidationError("--learning-rate must be positive and finite; got \(settings.learningRate)")
        }
        guard settings.batchSize >= 0 else { throw ValidationError("--batch-size must be 0 (full batch) or positive") }
        guard settings.epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be in 1...1024; got \(threads)") }
        if let momentum, !(momentum >= 0 && momentum < 1) { throw ValidationError("--momentum must be in [0, 1); got \(momentum)") }
        if let weightDecay, !(weightDecay >= 0 && weightDecay.isFinite) {
            throw ValidationError("--weight-decay must be finite and ≥ 0; got \(weightDecay)")
        }
        guard dropout >= 0 && dropout < 1 else { throw ValidationError("--dropout must be in [0, 1); got \(dropout)") }
        if model != .mlp {  // refuse what the CNN and the recurrent models cannot honour rather than ignore it
            if layers != nil && settings.sizes.count > 2 {
                throw ValidationError("--model \(model.rawValue) has its own hidden layers; give --layers as INPUTS-CLASSES (e.g. 784-10), got '\(layers ?? "")'")
            }
            if batchNorm { throw ValidationError("--model \(model.rawValue) does not take --batch-norm") }
            if dropout > 0 && !(model.isRecurrent && numLayers > 1) {
                throw ValidationError(model.isRecurrent ? "--dropout with --model \(model.rawValue) is dropout between stacked layers: it needs --num-layers 2 or more"
                                                        : "--model \(model.rawValue) does not take --dropout")
            }
            if residual { throw ValidationError("--model \(model.rawValue) does not take --residual") }
        }
        guard hidden >= 1 && hidden <= 1 << 16 else { throw ValidationError("--hidden must be in 1...65536; got \(hidden)") }
        guard (1...64).contains(numLayers) else { throw ValidationError("--num-layers must be in 1...64; got \(numLayers)") }
        if model.isRecurrent {  // refuse what the recurrent models would silently ignore
            if self.activation != nil { throw ValidationError("--model \(model.rawValue) has its own nonlinearities (gates); it does not take --activation") }
            if self.initializer != nil { throw ValidationError("--model \(model.rawValue) is initialised as PyTorch does (U(−1/√H, 1/√H)); it does not take --init") }
        }
        if !model.isRecurrent && (numLayers != 1 || bidirectional || hiddenOption != nil) {
            throw ValidationError("--hidden, --num-layers and --bidirectional are for --model rnn, lstm or gru, not \(model.rawValue) (give its layers with --layers)")
        }
        guard warmupEpochs >= 0 else { throw ValidationError("--warmup-epochs must be ≥ 0") }
        if let stepSize, stepSize < 1 { throw ValidationError("--step-size must be at least 1") }
        if let gamma, !(gamma > 0 && gamma.isFinite) { throw ValidationError("--gamma must be positive and finite; got \(gamma)") }
        guard minLearningRate >= 0 && minLearningRate.isFinite else {
            throw ValidationError("--min-learning-rate must be finite and ≥ 0; got \(minLearningRate)")
        }
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1") }
        if let clipNorm, !(clipNorm > 0 && clipNorm.isFinite) { throw ValidationError("--clip-norm must be positive and finite; got \(clipNorm)") }
        if let clipValue, !(clipValue > 0 && clipValue.isFinite) { throw ValidationError("--clip-value must be positive and finite; got \(clipValue)") }
        return settings
    }
}
