import Backprop
import BackpropMPI
import CBackpropSignals
import Foundation

/// What `backprop train` shows as it runs: one implementation per output style.
protocol TrainingReporter: AnyObject {
    /// Before the first epoch, with a line describing the run.
    func started(_ summary: String)
    /// Before each epoch (numbered from 1).
    func epochStarted(_ epoch: Int, of epochs: Int, samplesPerBatch: Int)
    /// After each step, with the running mean loss of the epoch.
    func batchFinished(_ done: Int, of total: Int, meanLoss: Float)
    /// After each epoch's training and test evaluation.
    func epochFinished(_ report: EpochReport, evaluation: Evaluation, of epochs: Int, learningRate: Float,
                       world: MPICommunicator?, table: TableReport?)
    /// A line about the run (the model saved, the ranks' weights agreeing).
    func note(_ line: String)
}

/// One line per epoch (and the summary and notes); with `showsProgress`, a progress bar redrawn during the epoch.
final class LineReporter: TrainingReporter {
    let showsProgress: Bool
    private var bar: ProgressBar?
    init(showsProgress: Bool) { self.showsProgress = showsProgress }

    func started(_ summary: String) { print(summary) }

    func epochStarted(_ epoch: Int, of epochs: Int, samplesPerBatch: Int) {
        if showsProgress { bar = ProgressBar(epoch: epoch, epochs: epochs, samplesPerBatch: samplesPerBatch) }
    }

    func batchFinished(_ done: Int, of total: Int, meanLoss: Float) { bar?.update(done: done, total: total, loss: meanLoss) }

    func epochFinished(_ report: EpochReport, evaluation: Evaluation, of epochs: Int, learningRate: Float,
                       world: MPICommunicator?, table: TableReport?) {
        bar?.clear()
        bar = nil
        if let metrics = table?.metrics {
            print(String(
                format: "epoch %3d/%d  train loss %.4f  test loss %.4f  test rmse %.4g  mae %.4g  r2 %.4f  %.3f s  %.0f samples/s",
                report.epoch, epochs, report.trainLoss, evaluation.loss, metrics.rootMeanSquaredError,
                metrics.meanAbsoluteError, metrics.r2, report.seconds, report.samplesPerSecond))
        } else {
            print(String(
                format: "epoch %3d/%d  train loss %.4f  test loss %.4f  test accuracy %.4f  %.3f s  %.0f samples/s",
                report.epoch, epochs, report.trainLoss, evaluation.loss, evaluation.accuracy ?? .nan,
                report.seconds, report.samplesPerSecond))
        }
        if let norms = report.layerGradientNorms, let ratios = report.layerUpdateRatios {
            print("           gradient norm per layer " + norms.map { String(format: "%.3g", $0) }.joined(separator: " ")
                  + "   update ratio " + ratios.map { String(format: "%.2g", $0) }.joined(separator: " "))
        }
        _ = bp_flush_standard_output()  // one line per epoch, even through a pipe (a failure is kept for the exit)
    }

    func note(_ line: String) { print(line) }
}

/// One JSON object per epoch on standard output (``EpochLine``), nothing else.
final class JSONLinesReporter: TrainingReporter {
    func started(_ summary: String) {}
    func epochStarted(_ epoch: Int, of epochs: Int, samplesPerBatch: Int) {}
    func batchFinished(_ done: Int, of total: Int, meanLoss: Float) {}

    func epochFinished(_ report: EpochReport, evaluation: Evaluation, of epochs: Int, learningRate: Float,
                       world: MPICommunicator?, table: TableReport?) {
        let line = EpochLine(
            epoch: report.epoch, train_loss: Double(report.trainLoss), test_loss: Double(evaluation.loss),
            test_accuracy: evaluation.accuracy ?? .nan, epoch_seconds: report.seconds,
            samples_per_second: report.samplesPerSecond, steps: report.stepCount,
            learning_rate: Double(learningRate),
            train_accuracy: report.trainAccuracy ?? .nan,
            grad_norms: report.layerGradientNorms,
            update_ratios: report.layerUpdateRatios,
            ranks: world?.size,
            allreduce_seconds_per_step: world.map { $0.allreduceSeconds / Double(max($0.allreduceCount, 1)) },
            test_rmse: table?.metrics?.rootMeanSquaredError, test_mae: table?.metrics?.meanAbsoluteError,
            test_r2: table?.metrics?.r2, read_seconds: table?.readSeconds)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: (try? encoder.encode(line)) ?? Data("{}".utf8), as: UTF8.self))
        _ = bp_flush_standard_output()
    }

    func note(_ line: String) {}
}

/// Nothing but errors (`--quiet`, and every MPI rank but the first).
final class SilentReporter: TrainingReporter {
    func started(_ summary: String) {}
    func epochStarted(_ epoch: Int, of epochs: Int, samplesPerBatch: Int) {}
    func batchFinished(_ done: Int, of total: Int, meanLoss: Float) {}
    func epochFinished(_ report: EpochReport, evaluation: Evaluation, of epochs: Int, learningRate: Float,
                       world: MPICommunicator?, table: TableReport?) {}
    func note(_ line: String) {}
}
