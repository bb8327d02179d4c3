import Foundation

/// An SVG chart of the training curves: loss (training and test) on the left, accuracy on the right, by epoch.
struct CurvePlot {
    struct Series {
        var name: String
        var color: String
        var values: [Double]
        var dashed = false
    }

    var title: String
    var trainLoss: [Double] = []
    var testLoss: [Double] = []
    var trainAccuracy: [Double] = []
    var testAccuracy: [Double] = []

    func svg() -> String {
        let width = 960.0, height = 420.0
        var body = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(width / 2)" y="28" text-anchor="middle" font-size="17" fill="#222">\(escape(title))</text>

            """
        body += panel(x: 0, y: 40, width: width / 2, height: height - 40, title: "Loss", series: [
            Series(name: "training", color: "#1f77b4", values: trainLoss),
            Series(name: "test", color: "#d62728", values: testLoss, dashed: true),
        ])
        body += panel(x: width / 2, y: 40, width: width / 2, height: height - 40, title: "Accuracy", series: [
            Series(name: "training", color: "#1f77b4", values: trainAccuracy),
            Series(name: "test", color: "#d62728", values: testAccuracy, dashed: true),
        ])
        return body + "</svg>\n"
    }

    private func panel(x: Double, y: Double, width: Double, height: Double, title: String, series: [Series]) -> String {
        let left = x + 70, right = x + width - 24, top = y + 30, bottom = y + height - 50
        let values = series.flatMap(\.values).filter(\.isFinite)
        let epochs = series.map(\.values.count).max() ?? 0
        guard !values.isEmpty, epochs > 0 else { return "" }
        var low = values.min()!, high = values.max()!
        if high - low < 1e-9 { low -= 0.5; high += 0.5 }
        let ticks = niceTicks(low: low, high: high, count: 5)
        low = min(low, ticks.first!); high = max(high, ticks.last!)
        func px(_ epoch: Int) -> Double {
            epochs == 1 ? (left + right) / 2 : left + (right - left) * Double(epoch - 1) / Double(epochs - 1)
        }
        func py(_ value: Double) -> Double { bottom - (bottom - top) * (value - low) / (high - low) }
        var s = "<g>\n"
        s += "<text x=\"\((left + right) / 2)\" y=\"\(top - 10)\" text-anchor=\"middle\" font-size=\"15\" fill=\"#222\">\(title)</text>\n"
        for tick in ticks {
            let ty = py(tick)
            s += "<line x1=\"\(left)\" y1=\"\(ty)\" x2=\"\(right)\" y2=\"\(ty)\" stroke=\"#e5e5e5\"/>\n"
            s += "<text x=\"\(left - 8)\" y=\"\(ty + 4)\" text-anchor=\"end\" font-size=\"12\" fill=\"#555\">\(format(tick))</text>\n"
        }
        let step = max(1, Int((Double(epochs) / 10).rounded(.up)))
        for epoch in stride(from: 1, through: epochs, by: step) {
            let tx = px(epoch)
            s += "<line x1=\"\(tx)\" y1=\"\(bottom)\" x2=\"\(tx)\" y2=\"\(bottom + 5)\" stroke=\"#555\"/>\n"
            s += "<text x=\"\(tx)\" y=\"\(bottom + 20)\" text-anchor=\"middle\" font-size=\"12\" fill=\"#555\">\(epoch)</text>\n"
        }
        s += "<line x1=\"\(left)\" y1=\"\(bottom)\" x2=\"\(right)\" y2=\"\(bottom)\" stroke=\"#555\"/>\n"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(bottom)\" stroke=\"#555\"/>\n"
        s += "<text x=\"\((left + right) / 2)\" y=\"\(bottom + 40)\" text-anchor=\"middle\" font-size=\"13\" fill=\"#333\">epoch</text>\n"
        for (i, line) in series.enumerated() where !line.values.isEmpty {
            let points = line.values.enumerated().filter { $0.element.isFinite }
                .map { "\(px($0.offset + 1)),\(py($0.element))" }.joined(separator: " ")
            let dash = line.dashed ? " stroke-dasharray=\"6 4\"" : ""
            s += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2.2\"\(dash) points=\"\(points)\"/>\n"
            for (epoch, value) in line.values.enumerated() where value.isFinite {
                s += "<circle cx=\"\(px(epoch + 1))\" cy=\"\(py(value))\" r=\"3\" fill=\"\(line.color)\"/>\n"
            }
            let ly = top + 8 + Double(i) * 18, lx = right - 110
            s += "<line x1=\"\(lx)\" y1=\"\(ly)\" x2=\"\(lx + 24)\" y2=\"\(ly)\" stroke=\"\(line.color)\" stroke-width=\"2.2\"\(dash)/>\n"
            s += "<text x=\"\(lx + 30)\" y=\"\(ly + 4)\" font-size=\"12\" fill=\"#333\">\(line.name)</text>\n"
        }
        return s + "</g>\n"
    }

    /// About `count` round tick values spanning [low, high].
    private func niceTicks(low: Double, high: Double, count: Int) -> [Double] {
        let raw = (high - low) / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        let first = floor(low / step) * step
        return stride(from: first, through: high + step * 0.999, by: step).map { $0 }
    }

    private func format(_ value: Double) -> String {
        abs(value) >= 100 ? String(format: "%.0f", value) : String(format: "%.3g", value)
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
