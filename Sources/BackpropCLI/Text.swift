@_spi(Internals) import Backprop
import ArgumentParser
import CBackpropSignals
import Foundation

/// `backprop text`: a character-level language model trained on text files, and text sampled from it.
struct Text: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text",
        abstract: "Train a character-level language model on text files and sample from it.",
        subcommands: [TextTrain.self, TextSample.self])
}

struct TextTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a character-level language model (bytes → LSTM/GRU/RNN or a GPT transformer → next byte) on text files.",
        discussion: """
            The corpus is the bytes of the files, in order; the vocabulary is its distinct bytes (saved in the model). \
            With --model rnn (the default) the last 5 % is validation; the training bytes are cut into --batch-size \
            contiguous streams and each step feeds the next --sequence-length bytes of every stream, one-hot, with the \
            state carried from the step before (truncated backpropagation through time), as \
            ../shared/peers/torch_charlm.py does. The saved file's tensors are that script's state_dict (rnn.*, \
            head.weight, head.bias).

            With --model gpt the last 10 % is validation; each of --iterations steps draws --batch-size random windows \
            of --context + 1 bytes and takes one AdamW step (betas 0.9, 0.99; --weight-decay on the matrices only; \
            the gradient norm clipped to --clip-norm; the rate warmed up over --warmup iterations, then a cosine down \
            to a tenth), as ../shared/peers/torch_gpt.py does; every --eval-interval iterations the validation loss is \
            the mean over 20 random batches. The saved file's tensors are that script's state_dict (tok.weight, \
            pos.weight, blocks.N.*, ln.weight).
            """)

    @Option(parsing: .upToNextOption, help: "The text files (one or more).")
    var text: [String] = []

    @Option(help: "The model: rnn (a recurrent cell, --cell) or gpt (a decoder-only transformer).")
    var model: String = "rnn"

    @Option(help: "The recurrent cell: lstm, gru, rnn.")
    var cell: String = "lstm"

    @Option(parsing: .unconditional, help: "The hidden state's size. (default: 128)", transform: number)
    var hidden: Int = 128

    @Option(parsing: .unconditional, help: "Stacked recurrent layers. (default: 1)", transform: number)
    var numLayers: Int = 1

    @Option(parsing: .unconditional, help: "Dropout between stacked layers, in training. (default: 0)", transform: number)
    var dropout: Float = 0

    @Option(parsing: .unconditional, help: "Bytes per stream per step (the truncation length of backpropagation through time). (default: 50)", transform: number)
    var sequenceLength: Int = 50

    @Option(parsing: .unconditional, help: "Streams (sequences) per step, or with --model gpt windows per step. (default: 50; 12 with --model gpt)", transform: number)
    var batchSize: Int?

    @Option(parsing: .unconditional, help: "Passes over the training bytes. (default: 1)", transform: number)
    var epochs: Int = 1

    @Option(name: .customLong("layers"), parsing: .unconditional, help: "GPT: transformer blocks. (default: 4)", transform: number)
    var layersOption: Int?
    var layers: Int { layersOption ?? 4 }

    @Option(name: .customLong("heads"), parsing: .unconditional, help: "GPT: attention heads, dividing --width. (default: 4)", transform: number)
    var headsOption: Int?
    var heads: Int { headsOption ?? 4 }

    @Option(name: .customLong("width"), parsing: .unconditional, help: "GPT: the features of each byte's vector. (default: 128)", transform: number)
    var widthOption: Int?
    var width: Int { widthOption ?? 128 }

    @Option(name: .customLong("context"), parsing: .unconditional, help: "GPT: the bytes the model sees at once. (default: 64)", transform: number)
    var contextOption: Int?
    var context: Int { contextOption ?? 64 }

    @Option(name: .customLong("iterations"), parsing: .unconditional, help: "GPT: optimizer steps in all (a resumed run continues up to this). (default: 2000)", transform: number)
    var iterationsOption: Int?
    var iterations: Int { iterationsOption ?? 2000 }

    @Option(name: .customLong("warmup"), parsing: .unconditional, help: "GPT: iterations of linear learning-rate warmup. (default: 100)", transform: number)
    var warmupOption: Int?
    var warmup: Int { warmupOption ?? 100 }

    @Option(parsing: .unconditional, help: "GPT: AdamW's decoupled weight decay, on the matrices. (default: 0.1)", transform: number)
    var weightDecay: Float = 0.1

    @Option(parsing: .unconditional, help: "GPT: measure the validation loss, print a line and save the model every N iterations (and after the last). (default: 100)", transform: number)
    var evalInterval: Int = 100

    @Option(parsing: .unconditional, help: "GPT: also save a resumable checkpoint (model, optimizer state, iteration, generator) every N iterations.", transform: number)
    var checkpointEvery: Int?

    @Option(help: "GPT: where --checkpoint-every writes.")
    var checkpoint: String = "checkpoint.safetensors"

    @Option(help: "GPT: continue training from a checkpoint written by --checkpoint-every, up to --iterations in all.")
    var resume: String?

    @Option(help: "The optimizer: adam, sgd, rmsprop.")
    var optimizer: String = "adam"

    @Option(parsing: .unconditional, help: "The learning rate. (default: 0.002; 0.001 with --model gpt)", transform: number)
    var learningRate: Float?

    @Option(parsing: .unconditional, help: "Clip the gradient's global norm to this (0: no clipping). (default: 5; 1 with --model gpt)", transform: number)
    var clipNorm: Float?

    @Option(parsing: .unconditional, help: "Seeds the initial weights and dropout. (default: 0)", transform: number)
    var seed: UInt64 = 0

    @Option(parsing: .unconditional, help: "Threads for the matrix products. (default: the CPUs this process may use)", transform: number)
    var threads: Int?

    @Option(help: "Save the model here (safetensors, written atomically, after every epoch or --eval-interval).")
    var output: String = "text-model.safetensors"

    @Flag(help: "Print one JSON object per epoch (per --eval-interval with --model gpt).")
    var json = false

    @Flag(help: "Print nothing but errors (and the JSON lines, with --json).")
    var quiet = false

    func validate() throws {
        guard !text.isEmpty else { throw ValidationError("give the corpus with --text FILE…") }
        guard ["rnn", "gpt"].contains(model) else { throw ValidationError("--model must be rnn or gpt; got '\(model)'") }
        if let learningRate { guard learningRate.isFinite && learningRate > 0 else { throw ValidationError("--learning-rate must be positive and finite; got \(learningRate)") } }
        if let clipNorm { guard clipNorm.isFinite && clipNorm >= 0 else { throw ValidationError("--clip-norm must be finite and ≥ 0; got \(clipNorm)") } }
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be in 1...1024; got \(threads)") }
        if let batchSize, !(1...100_000).contains(batchSize) { throw ValidationError("--batch-size must be in 1...100000; got \(batchSize)") }
        if model == "gpt" { return try validateGPT() }
        for (flag, given) in [("--resume", resume != nil), ("--checkpoint-every", checkpointEvery != nil)] where given {
            throw ValidationError("\(flag) is for --model gpt (a recurrent model trains in epochs; run more with --epochs)")
        }
        let gptOnly = [("--layers", layersOption), ("--heads", headsOption), ("--width", widthOption),
                       ("--context", contextOption), ("--iterations", iterationsOption), ("--warmup", warmupOption)]
        for (flag, value) in gptOnly where value != nil {
            throw ValidationError("\(flag) is for --model gpt (a recurrent model is sized by --hidden and --num-layers, and trains for --epochs)")
        }
        guard ["lstm", "gru", "rnn"].contains(cell) else { throw ValidationError("--cell must be lstm, gru or rnn; got '\(cell)'") }
        guard (1...65536).contains(hidden) else { throw ValidationError("--hidden must be in 1...65536; got \(hidden)") }
        guard (1...64).contains(numLayers) else { throw ValidationError("--num-layers must be in 1...64; got \(numLayers)") }
        guard dropout >= 0 && dropout < 1 else { throw ValidationError("--dropout must be in [0, 1); got \(dropout)") }
        if dropout > 0 && numLayers == 1 { throw ValidationError("--dropout is dropout between stacked layers: it needs --num-layers 2 or more") }
        guard (1...100_000).contains(sequenceLength) else { throw ValidationError("--sequence-length must be in 1...100000; got \(sequenceLength)") }
        guard (1...1_000_000).contains(epochs) else { throw ValidationError("--epochs must be in 1...1000000; got \(epochs)") }
        guard ["adam", "sgd", "rmsprop"].contains(optimizer) else { throw ValidationError("--optimizer must be adam, sgd or rmsprop; got '\(optimizer)'") }
        // The memory of one step: the one-hot input and logits, and the layer's saved gates and states.
        let (cells, overflow) = streams.multipliedReportingOverflow(by: sequenceLength)
        guard !overflow, cells <= 50_000_000 else {
            throw ValidationError("--batch-size \(streams) × --sequence-length \(sequenceLength) is too large a step")
        }
    }

    /// --batch-size for the recurrent model, and its other defaults.
    var streams: Int { batchSize ?? 50 }
    var recurrentLearningRate: Float { learningRate ?? 0.002 }
    var recurrentClipNorm: Float { clipNorm ?? 5 }

    /// One line of `--json` output per epoch. Field names are a contract: add, rename none.
    struct EpochLine: Encodable {
        var epoch: Int
        var train_loss: Double
        var validation_loss: Double
        var validation_bits_per_character: Double
        var epoch_seconds: Double
        var characters_per_second: Double
    }

    func run() throws {
        if model == "gpt" { return try runGPT() }
        let batchSize = streams, learningRate = recurrentLearningRate, clipNorm = recurrentClipNorm
        Parallel.setThreadCount(threadCount(threads, default: Parallel.availableProcessors, quiet: json))
        try checkOutputLocation(output, flag: "--output")
        try checkOutputsSpareInputs([(output, "--output")], inputs: text.map { ($0, "a text file of the corpus (--text)") })
        installTemporaryFileCleanup()
        let corpus: TextCorpus
        do { corpus = try TextCorpus(files: text) } catch { throw fail(error.description) }
        let streamsNeeded = batchSize * sequenceLength + 1
        for (name, part) in [("training", corpus.training), ("validation", corpus.validation)]
        where TextCorpus.chunkCount(part, streams: batchSize, sequenceLength: sequenceLength) < 1 {
            throw fail("\(text.joined(separator: " ")): the \(name) part (\(part.count) bytes of \(corpus.ids.count), the \(name == "training" ? "first 95" : "last 5") %) is shorter than one sequence of \(sequenceLength) per stream for \(batchSize) streams (\(streamsNeeded) bytes); give more text or smaller --batch-size/--sequence-length")
        }
        let kind: RecurrentCell = cell == "lstm" ? .lstm : cell == "gru" ? .gru : .rnnTanh
        // Refuse, before allocating, a model and step that do not fit in memory: parameters with gradients and two
        // optimizer buffers, the layer's saved gates and states, the one-hot input, logits and targets.
        let v = Double(corpus.vocabulary.count), cells = Double(batchSize * sequenceLength)
        let parameters = Double(RecurrentStack.parameterCount(cell: kind, inputSize: corpus.vocabulary.count, hiddenSize: hidden,
                                                              numLayers: numLayers, directions: 1)) + (Double(hidden) + 1) * v
        let scratch = RecurrentStack.scratchEstimate(cell: kind, inputSize: corpus.vocabulary.count, hiddenSize: hidden,
                                                     numLayers: numLayers, directions: 1, rows: batchSize, steps: sequenceLength)
        let needed = 4 * (4 * parameters + scratch + cells * (5 * v + 2 * Double(hidden)))
        if needed > Double(ProcessInfo.processInfo.physicalMemory) {
            throw fail(String(format: "--hidden %d --num-layers %d with %d streams of %d bytes needs about %.1f GB; this machine has %.1f GB",
                              hidden, numLayers, batchSize, sequenceLength, needed / 1e9, Double(ProcessInfo.processInfo.physicalMemory) / 1e9))
        }
        let model = TextModel(vocabulary: corpus.vocabulary, cell: kind, hiddenSize: hidden, numLayers: numLayers,
                              dropout: dropout, seed: seed)
        let optimizer: any Optimizer = switch self.optimizer {
        case "sgd": SGD(learningRate: learningRate)
        case "rmsprop": RMSprop(learningRate: learningRate)
        default: Adam(learningRate: learningRate)
        }
        let trainer = TextTrainer(model: model, optimizer: optimizer, sequenceLength: sequenceLength, batchSize: batchSize,
                                  clipNorm: clipNorm > 0 ? clipNorm : nil)
        let chunks = TextCorpus.chunkCount(corpus.training, streams: batchSize, sequenceLength: sequenceLength)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if !json && !quiet {
            print("backprop text: \(corpus.ids.count) bytes, vocabulary \(corpus.vocabulary.count); \(numLayers > 1 ? "\(numLayers)×" : "")\(cell) \(hidden), "
                  + "\(self.optimizer) lr \(learningRate), \(batchSize) streams × \(sequenceLength) bytes, \(chunks) steps per epoch, "
                  + "\(Parallel.threadCount) thread(s)")
        }
        for epoch in 1...epochs {
            var bar = standardOutputIsTerminal && !json && !quiet ? ProgressBar(epoch: epoch, epochs: epochs, samplesPerBatch: batchSize * sequenceLength) : nil
            let start = monotonicSeconds()
            let trainLoss: Double
            do {
                trainLoss = try trainer.trainEpoch(corpus.training, epoch: epoch) { done, total, loss in
                    bar?.update(done: done, total: total, loss: loss)
                }
            } catch {
                bar?.clear()
                if case .diverged = error { throw fail("\(error.description); nothing saved") }  // (it names the epoch)
                throw fail("epoch \(epoch): \(error.description); nothing saved")
            }
            let seconds = monotonicSeconds() - start
            bar?.clear()
            let validation: Double
            do { validation = try trainer.loss(on: corpus.validation) } catch { throw fail("validation: \(error.description)") }
            guard validation.isFinite else { throw fail("epoch \(epoch): the validation loss is \(validation); nothing saved") }
            let characters = Double(chunks * batchSize * sequenceLength)
            let line = EpochLine(epoch: epoch, train_loss: trainLoss, validation_loss: validation,
                                 validation_bits_per_character: validation / log(2), epoch_seconds: seconds,
                                 characters_per_second: characters / max(seconds, 1e-9))
            if json {
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
            } else if !quiet {
                print(String(format: "epoch %3d/%d  train loss %.4f  validation loss %.4f (%.3f bits per character)  %.1f s  %.0f characters/s",
                             epoch, epochs, trainLoss, validation, line.validation_bits_per_character, seconds, line.characters_per_second))
            }
            do {
                try model.save(to: output, metadata: [
                    "written_by": "backprop text train", "cell": cell, "hidden": "\(hidden)", "num_layers": "\(numLayers)",
                    "sequence_length": "\(sequenceLength)", "batch_size": "\(batchSize)", "optimizer": self.optimizer,
                    "learning_rate": "\(learningRate)", "epochs": "\(epoch)", "seed": "\(seed)",
                    "validation_bits_per_character": "\(line.validation_bits_per_character)",
                ])
            } catch {
                throw fail(error.description)
            }
        }
        if !json && !quiet { print("saved the model to \(output)") }
    }
}

struct TextSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Print text generated by a model saved by 'backprop text train' (recurrent or GPT).",
        discussion: """
            A GPT model runs each byte once against a key/value cache; when its context is full it restarts from the \
            last half of it, so every byte is predicted from between half the context and all of it.
            """)

    @Option(help: "A model saved by 'backprop text train'.")
    var model: String

    @Option(parsing: .unconditional, help: "Bytes to generate. (default: 500)", transform: number)
    var length: Int = 500

    @Option(parsing: .unconditional, help: "Divides the logits before the softmax: below 1 more likely bytes, above 1 more varied. (default: 0.8)", transform: number)
    var temperature: Float = 0.8

    @Option(parsing: .unconditional, help: """
        Text to start from (run through the model first; not printed again): its bytes exactly as given, UTF-8 or \
        not, each of which the model's vocabulary must hold. (default: a newline)
        """)
    var prime: String?

    @Option(parsing: .unconditional, help: "Seeds the sampling. (default: 0)", transform: number)
    var seed: UInt64 = 0

    @Option(parsing: .unconditional, help: "GPT models: draw from the K most likely bytes only (1: greedy decoding). (default: all)", transform: number)
    var topK: Int?

    @Flag(help: "Print the generation's time and bytes per second on standard error.")
    var timing = false

    func validate() throws {
        guard (0...100_000_000).contains(length) else { throw ValidationError("--length must be in 0...100000000; got \(length)") }
        if let topK, !(1...256).contains(topK) { throw ValidationError("--top-k must be in 1...256; got \(topK)") }
        guard temperature.isFinite && temperature > 0 && temperature <= 100 else {
            throw ValidationError("--temperature must be in (0, 100]; got \(temperature)")
        }
    }

    func run() throws {
        Parallel.setThreadCount(1)
        let file: SafetensorsFile
        do { file = try SafetensorsFile(contentsOf: model) } catch { throw fail(error.description) }
        // The bytes as the shell passed them: `prime` has each byte that is not UTF-8 replaced by U+FFFD.
        let prime = self.prime == nil ? [] : rawArgument("--prime") ?? Array((self.prime ?? "").utf8)
        if GPTModel.isGPT(file) { return try runGPT(file, prime: prime) }
        if topK != nil { throw fail("--top-k is for GPT models; \(model) is a recurrent model") }
        let textModel: TextModel
        do { textModel = try TextModel.load(from: file, path: model) } catch { throw fail(error.description) }
        let start = monotonicSeconds()
        let bytes: [UInt8]
        do {
            bytes = try textModel.sample(length: length, temperature: temperature, prime: prime, seed: seed)
        } catch {
            throw fail("--prime: \(error.description)")
        }
        let seconds = monotonicSeconds() - start
        let text = bytes.last == 10 ? bytes : bytes + [10]
        // Through stdio, so that a failed write is reported (BackpropCommand.checkStandardOutput), not a trap.
        _ = text.withUnsafeBufferPointer { bp_write_standard_output($0.baseAddress, UInt($0.count)) }
        if timing {
            FileHandle.standardError.write(Data(String(format: "generated %d bytes in %.4f s: %.0f bytes per second\n",
                                                       bytes.count, seconds, Double(bytes.count) / max(seconds, 1e-9)).utf8))
        }
    }
}
