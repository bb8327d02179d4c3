import CBackpropSignals
import Foundation

/// A one-line progress bar for a training epoch, redrawn in place on a terminal at most ten times a second:
/// `epoch 2/5 [██████████░░░░░░░░░░]  450/938  245 103 samples/s  loss 0.4123  ETA 0.3 s`.
struct ProgressBar {
    let epoch: Int
    let epochs: Int
    let samplesPerBatch: Int
    private let start = Date()
    private var lastDraw = Date.distantPast

    init(epoch: Int, epochs: Int, samplesPerBatch: Int) {
        self.epoch = epoch
        self.epochs = epochs
        self.samplesPerBatch = samplesPerBatch
    }

    /// Redraws the bar after `done` of `total` batches, unless it was drawn less than 0.1 s ago.
    mutating func update(done: Int, total: Int, loss: Float) {
        let now = Date()
        guard done == total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let fraction = Double(done) / Double(max(total, 1))
        let width = 24, filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let rate = elapsed > 0 ? Double(done * samplesPerBatch) / elapsed : 0
        let eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0
        let line = String(format: "epoch %d/%d [%@] %*d/%d  %.0f samples/s  loss %.4f  ETA %.1f s",
                          epoch, epochs, bar, String(total).count, done, total, rate, loss, eta)
        let bytes = Array(("\r\u{1B}[K" + line).utf8)
        _ = bytes.withUnsafeBufferPointer { bp_write_standard_output($0.baseAddress, UInt($0.count)) }
        _ = bp_flush_standard_output()
    }

    /// Erases the bar, so that the epoch's summary line takes its place.
    func clear() {
        let bytes = Array("\r\u{1B}[K".utf8)
        _ = bytes.withUnsafeBufferPointer { bp_write_standard_output($0.baseAddress, UInt($0.count)) }
    }
}

/// Whether standard output is a terminal.
var standardOutputIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }
