import Foundation

/// A self-contained HTML page comparing adapters on one evaluation set: the metric table, the
/// training and validation loss curves and the metric per adapter as inline SVG, and answers
/// side by side. No scripts, no external assets: it opens from disk in any browser.
public struct ComparisonReport: Sendable {
    public struct Column: Sendable {
        /// `name@version`, or `base`.
        public var label: String
        public var result: EvaluationResult
        /// [[step, loss]] of the adapter's training run (empty for the base).
        public var lossCurve: [[Double]]
        public var validationCurve: [[Double]]
        public var trainSeconds: Double?
        public var sizeBytes: Int64?

        public init(
            label: String, result: EvaluationResult, lossCurve: [[Double]] = [], validationCurve: [[Double]] = [], trainSeconds: Double? = nil,
            sizeBytes: Int64? = nil
        ) {
            self.label = label
            self.result = result
            self.lossCurve = lossCurve
            self.validationCurve = validationCurve
            self.trainSeconds = trainSeconds
            self.sizeBytes = sizeBytes
        }
    }

    public let dataset: String
    public let columns: [Column]
    /// Examples shown side by side.
    public let sampleCount: Int

    public init(dataset: String, columns: [Column], sampleCount: Int = 20) {
        self.dataset = dataset
        self.columns = columns
        self.sampleCount = sampleCount
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    public var html: String {
        var page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>lora compare: \(escape(dataset))</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
            table { border-collapse: collapse; margin: 1em 0; }
            th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
            td.num { text-align: right; font-variant-numeric: tabular-nums; }
            .ok { background: #e6f4e6; } .bad { background: #fbe9e9; }
            .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
            svg text { font: 11px sans-serif; }
            </style></head><body>
            <h1>Adapters on \(escape(dataset))</h1>

            """
        page += metricTable + "<h2>Exact match</h2>\n" + barChart
        page += "<h2>Training loss (solid) and validation loss (dashed)</h2>\n" + lossChart
        page += samples + "</body></html>\n"
        return page
    }

    private func color(_ index: Int) -> String { Self.palette[index % Self.palette.count] }

    private var metricTable: String {
        var rows = "<table><tr><th>adapter</th><th>examples</th><th>exact match</th><th>normalised match</th><th>loss</th><th>perplexity</th><th>train time</th><th>size</th></tr>\n"
        for (index, column) in columns.enumerated() {
            let r = column.result
            rows += "<tr><td><span class=\"swatch\" style=\"background:\(color(index))\"></span>\(escape(column.label))</td>"
            rows += "<td class=\"num\">\(r.examples)</td>"
            rows += "<td class=\"num\">\(r.exactMatch.map(percent) ?? "–")</td><td class=\"num\">\(r.normalizedMatch.map(percent) ?? "–")</td>"
            rows += "<td class=\"num\">\(String(format: "%.4f", r.loss))</td><td class=\"num\">\(String(format: "%.3f", r.perplexity))</td>"
            rows += "<td class=\"num\">\(column.trainSeconds.map { String(format: "%.0f s", $0) } ?? "–")</td>"
            rows += "<td class=\"num\">\(column.sizeBytes.map { String(format: "%.1f MB", Double($0) / 1e6) } ?? "–")</td></tr>\n"
        }
        return rows + "</table>\n"
    }

    private var barChart: String {
        let width = 640.0, barHeight = 22.0, left = 180.0
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(Double(columns.count) * (barHeight + 6) + 10))\" role=\"img\">\n"
        for (index, column) in columns.enumerated() {
            let y = 5 + Double(index) * (barHeight + 6)
            let value = column.result.exactMatch ?? 0
            let length = (width - left - 60) * value
            svg += "<text x=\"\(Int(left - 6))\" y=\"\(Int(y + 15))\" text-anchor=\"end\">\(escape(column.label))</text>"
            svg += "<rect x=\"\(Int(left))\" y=\"\(Int(y))\" width=\"\(String(format: "%.1f", length))\" height=\"\(Int(barHeight))\" fill=\"\(color(index))\"/>"
            svg += "<text x=\"\(String(format: "%.1f", left + length + 4))\" y=\"\(Int(y + 15))\">\(column.result.exactMatch.map(percent) ?? "n/a")</text>\n"
        }
        return svg + "</svg>\n"
    }

    private var lossChart: String {
        let curves = columns.enumerated().flatMap { index, column in
            [(index, column.lossCurve, false), (index, column.validationCurve, true)].filter { !$0.1.isEmpty }
        }
        guard !curves.isEmpty else { return "<p>No training curves (no adapter with a recorded run).</p>\n" }
        let points = curves.flatMap { $0.1 }.filter { $0.count == 2 && $0[1].isFinite && $0[1] > 0 }
        let maxStep = max(points.map { $0[0] }.max() ?? 1, 1)
        // Log scale: losses fall over orders of magnitude.
        let logs = points.map { log10($0[1]) }
        let (low, high) = (floor(logs.min() ?? -1), ceil(logs.max() ?? 1))
        let span = max(high - low, 1)
        let (width, height, left, bottom) = (640.0, 300.0, 50.0, 30.0)
        func x(_ step: Double) -> Double { left + (width - left - 10) * step / maxStep }
        func y(_ loss: Double) -> Double { 10 + (height - bottom - 10) * (high - log10(max(loss, 1e-12))) / span }
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\">\n"
        svg += "<line x1=\"\(Int(left))\" y1=\"\(Int(height - bottom))\" x2=\"\(Int(width - 10))\" y2=\"\(Int(height - bottom))\" stroke=\"#888\"/>"
        svg += "<line x1=\"\(Int(left))\" y1=\"10\" x2=\"\(Int(left))\" y2=\"\(Int(height - bottom))\" stroke=\"#888\"/>\n"
        for exponent in stride(from: low, through: high, by: 1) {
            let value = pow(10, exponent)
            svg += "<text x=\"\(Int(left - 4))\" y=\"\(Int(y(value) + 4))\" text-anchor=\"end\">\(String(format: "%g", value))</text>"
        }
        svg += "<text x=\"\(Int(width - 10))\" y=\"\(Int(height - 8))\" text-anchor=\"end\">step \(Int(maxStep))</text>\n"
        for (index, curve, dashed) in curves {
            let kept = curve.filter { $0.count == 2 && $0[1].isFinite && $0[1] > 0 }
            let path = kept.map { String(format: "%.1f,%.1f", x($0[0]), y($0[1])) }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(color(index))\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"5,4\"" : "") points=\"\(path)\"/>\n"
            // Markers, so that a curve of a single report still shows.
            for point in kept {
                svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" ", x(point[0]), y(point[1])) + "fill=\"\(color(index))\"/>"
            }
            svg += "\n"
        }
        return svg + "</svg>\n"
    }

    private var samples: String {
        guard let first = columns.first, !first.result.predictions.isEmpty else { return "" }
        var html = "<h2>Answers (first \(min(sampleCount, first.result.predictions.count)))</h2>\n<table><tr><th>line</th><th>prompt</th><th>reference</th>"
        html += columns.map { "<th>\(escape($0.label))</th>" }.joined() + "</tr>\n"
        for (row, prediction) in first.result.predictions.prefix(sampleCount).enumerated() {
            html += "<tr><td class=\"num\">\(prediction.line)</td><td>\(escape(prediction.prompt))</td><td><code>\(escape(prediction.reference))</code></td>"
            for column in columns {
                guard row < column.result.predictions.count else { html += "<td></td>"; continue }
                let answer = column.result.predictions[row]
                html += "<td class=\"\(answer.exact ? "ok" : "bad")\"><code>\(escape(answer.output))</code></td>"
            }
            html += "</tr>\n"
        }
        return html + "</table>\n"
    }

    private func percent(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
