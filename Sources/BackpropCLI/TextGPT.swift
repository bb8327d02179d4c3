@_spi(Internals) import Backprop
import ArgumentParser
import CBackpropSignals
import Foundation

/// `backprop text train --model gpt`: the transformer, trained as `../shared/peers/torch_gpt.py` trains it.
extension TextTrain {
    func validateGPT() throws {
        guard (1...1024).contains(layers) else { throw ValidationError("--layers must be in 1...1024; got \(layers)") }
        guard (1...65536).contains(width) else { throw ValidationError("--width must be in 1...65536; got \(width)") }
        guard (1...65536).contains(heads) else { throw ValidationError("--heads must be in 1...65536; got \(heads)") }
        guard width % heads == 0 else {
            throw ValidationError("--heads \(heads) does not divide --width \(width): each head takes width/heads features")
        }
        guard (1...65536).contains(context) else { throw ValidationError("--context must be in 1...65536; got \(context)") }
        guard (1...100_000_000).contains(iterations) else { throw ValidationError("--iterations must be in 1...100000000; got \(iterations)") }
        guard (0...100_000_000).contains(warmup) else { throw ValidationError("--warmup must be in 0...100000000; got \(warmup)") }
        guard weightDecay.isFinite && weightDecay >= 0 else { throw ValidationError("--weight-decay must be finite and ≥ 0; got \(weightDecay)") }
        guard (1...100_000_000).contains(evalInterval) else { throw ValidationError("--eval-interval must be in 1...100000000; got \(evalInterval)") }
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1") }
        let (cells, overflow) = gptBatchSize.multipliedReportingOverflow(by: context)
        guard !overflow, cells <= 10_000_000 else {
            throw ValidationError("--batch-size \(gptBatchSize) × --context \(context) is too large a step")
        }
    }

    var gptBatchSize: Int { batchSize ?? 12 }

    /// One line of `--json` output per --eval-interval. Field names are a contract: add, rename none.
    struct IterationLine: Encodable {
        var iteration: Int
        var train_loss: Double
        var validation_loss: Double
        var validation_bits_per_character: Double
        var learning_rate: Double
        var seconds: Double
        var seconds_per_iteration: Double
    }

    func runGPT() throws {
        Parallel.setThreadCount(threadCount(threads, default: Parallel.availableProcessors, quiet: json))
        let learningRate = self.learningRate ?? 1e-3, clipNorm = self.clipNorm ?? 1, batchSize = gptBatchSize
        try checkOutputLocation(output, flag: "--output")
        var outputs = [(output, "--output")]
        if checkpointEvery != nil {
            try checkOutputLocation(checkpoint, flag: "--checkpoint")
            outputs.append((checkpoint, "--checkpoint"))
        }
        // The checkpoint may keep being written where it is resumed from; the model may not.
        try checkOutputsSpareInputs(outputs.filter { $0.1 != "--checkpoint" },
                                    inputs: text.map { ($0, "a text file of the corpus (--text)") } + (resume.map { [($0, "the checkpoint being resumed (--resume)")] } ?? []))
        try checkOutputsSpareInputs(outputs, inputs: text.map { ($0, "a text file of the corpus (--text)") })
        installTemporaryFileCleanup()
        let corpus: TextCorpus
        do { corpus = try TextCorpus(files: text, trainingFraction: 0.9) } catch { throw fail(error.description) }
        for (name, part) in [("training", corpus.training), ("validation", corpus.validation)] where part.count < context + 2 {
            throw fail("\(text.joined(separator: " ")): the \(name) part (\(part.count) bytes of \(corpus.ids.count), the \(name == "training" ? "first 90" : "last 10") %) is shorter than a window of --context \(context) and the byte after it (\(context + 2) bytes, from at least one start); give more text or a smaller --context")
        }
        let v = corpus.vocabulary.count
        // Refuse, before allocating, a model and step that do not fit in memory: parameters, gradients and AdamW's two
        // buffers; every block's saved activations (27 C per position and the attention probabilities); the logits.
        let c = Double(width), t = Double(context), b = Double(batchSize), l = Double(layers)
        let parameters = (Double(v) + t) * c + l * (12 * c * c + 2 * c) + c
        let activations = l * (b * t * 27 * c + b * Double(heads) * t * t) + b * t * (5 * c + 4 * Double(v))
        let needed = 4 * (4 * parameters + activations)
        if needed > Double(ProcessInfo.processInfo.physicalMemory) {
            throw fail(String(format: "--layers %d --width %d --context %d --batch-size %d needs about %.1f GB; this machine has %.1f GB",
                              layers, width, context, batchSize, needed / 1e9, Double(ProcessInfo.processInfo.physicalMemory) / 1e9))
        }
        let model: GPTModel
        var resumeFile: SafetensorsFile?
        if let resume {
            do {
                let file = try SafetensorsFile(contentsOf: resume)
                model = try GPTModel.load(from: file, path: resume)
                resumeFile = file
            } catch { throw fail(error.description) }
            guard model.vocabulary == corpus.vocabulary else {
                throw fail("\(resume) was trained on a vocabulary of \(model.vocabularySize) bytes, this corpus has \(v) (another corpus); resume on the same text")
            }
            let g = model.gpt
            guard (g.layerCount, g.heads, g.width, g.context) == (layers, heads, width, context) else {
                throw fail("\(resume) is a model of --layers \(g.layerCount) --heads \(g.heads) --width \(g.width) --context \(g.context); resume with those")
            }
        } else {
            model = GPTModel(vocabulary: corpus.vocabulary, layers: layers, heads: heads, width: width, context: context, seed: seed)
        }
        let schedule = WarmupCosineSchedule(base: learningRate, minimum: learningRate / 10, warmup: warmup, iterations: iterations)
        let trainer = GPTTrainer(model: model, learningRate: learningRate, weightDecay: weightDecay, batchSize: batchSize,
                                 schedule: schedule, clipNorm: clipNorm > 0 ? clipNorm : nil)
        var generator = SeededGenerator(seed: seed &+ 1)
        if let resumeFile, let resume {
            do { generator = try trainer.restore(from: resumeFile, path: resume) } catch { throw fail(error.description) }
            guard trainer.stepCount < iterations else {
                throw fail("\(resume) has already trained \(trainer.stepCount) iterations; ask for more with --iterations")
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if !json && !quiet {
            print("backprop text: \(corpus.ids.count) bytes, vocabulary \(v); GPT \(layers) layers, \(heads) heads, width \(width), "
                  + "context \(context), \(model.network.parameterCount) parameters; AdamW lr \(learningRate), \(batchSize) windows per step, "
                  + "\(iterations) iterations, \(Parallel.threadCount) thread(s)")
        }
        func metadata(_ iteration: Int, validation: Double) -> [String: String] {
            ["written_by": "backprop text train --model gpt", "layers": "\(layers)", "heads": "\(heads)", "width": "\(width)",
             "context": "\(context)", "batch_size": "\(batchSize)", "learning_rate": "\(learningRate)",
             "iterations": "\(iteration)", "seed": "\(seed)", "validation_loss": "\(validation)"]
        }
        var seconds = 0.0, intervalLoss = 0.0, intervalTimes: [Double] = []
        intervalTimes.reserveCapacity(evalInterval)
        var validationGenerator = SeededGenerator(seed: seed &+ 2)
        while trainer.stepCount < iterations {
            let start = monotonicSeconds()
            let loss: Float
            do { loss = try trainer.step(corpus.training, using: &generator) } catch {
                throw fail("iteration \(trainer.stepCount + 1): \(error.description); the model was last saved \(trainer.stepCount >= evalInterval ? "at iteration \(trainer.stepCount / evalInterval * evalInterval)" : "never")")
            }
            let elapsed = monotonicSeconds() - start
            seconds += elapsed
            intervalLoss += Double(loss)
            intervalTimes.append(elapsed)
            let iteration = trainer.stepCount
            if let checkpointEvery, iteration % checkpointEvery == 0 {
                do { try trainer.saveCheckpoint(to: checkpoint, generator: generator, metadata: metadata(iteration, validation: .nan)) } catch {
                    throw fail(error.description)
                }
            }
            guard iteration % evalInterval == 0 || iteration == iterations else { continue }
            let validation: Double
            do { validation = try trainer.loss(on: corpus.validation, batches: 20, using: &validationGenerator) } catch {
                throw fail("validation: \(error.description)")
            }
            guard validation.isFinite else { throw fail("iteration \(iteration): the validation loss is \(validation); nothing saved") }
            intervalTimes.sort()
            let line = IterationLine(iteration: iteration, train_loss: intervalLoss / Double(intervalTimes.count), validation_loss: validation,
                                     validation_bits_per_character: validation / log(2),
                                     learning_rate: Double(schedule.learningRate(iteration: iteration - 1)), seconds: seconds,
                                     seconds_per_iteration: intervalTimes[intervalTimes.count / 2])
            if json {
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
            } else if !quiet {
                print(String(format: "iteration %5d/%d  train loss %.4f  validation loss %.4f (%.3f bits per character)  %.1f s  %.1f ms/iteration",
                             iteration, iterations, line.train_loss, validation, line.validation_bits_per_character, seconds,
                             line.seconds_per_iteration * 1000))
            }
            fflush(nil)  // each line as it comes, also into a pipe
            (intervalLoss, intervalTimes) = (0, [])
            intervalTimes.reserveCapacity(evalInterval)
            do { try model.save(to: output, metadata: metadata(iteration, validation: validation)) } catch { throw fail(error.description) }
        }
        if !json && !quiet { print("saved the model to \(output)") }
    }
}

extension TextSample {
    /// Generation from a GPT model: the key/value cache, `--temperature` and `--top-k`.
    func runGPT(_ file: SafetensorsFile, prime: [UInt8]) throws {
        let gptModel: GPTModel
        do { gptModel = try GPTModel.load(from: file, path: model) } catch { throw fail(error.description) }
        let bytes: [UInt8]
        let start = monotonicSeconds()
        do {
            bytes = try gptModel.generate(length: length, prompt: prime, temperature: temperature, topK: topK, seed: seed)
        } catch {
            throw fail("--prime: \(error.description)")
        }
        let seconds = monotonicSeconds() - start
        let text = bytes.last == 10 ? bytes : bytes + [10]
        _ = text.withUnsafeBufferPointer { bp_write_standard_output($0.baseAddress, UInt($0.count)) }
        if timing {
            FileHandle.standardError.write(Data(String(format: "generated %d bytes in %.4f s: %.0f bytes per second\n",
                                                       bytes.count, seconds, Double(bytes.count) / max(seconds, 1e-9)).utf8))
        }
    }
}
