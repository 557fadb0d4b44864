import VAVLTraining
import Foundation
import HDF5

/// A line plot written as a self-contained SVG file (no fonts or scripts fetched), for the
/// robustness figures (paper Figs. 2–3): x = % of masked frames, y = the task's metric.
public struct LinePlot: Sendable {
    public enum Stroke: String, Sendable { case solid, dashed, dotted }

    public struct Series: Sendable {
        public var name: String
        /// (x, y) points; non-finite y values are skipped.
        public var points: [(x: Double, y: Double)]
        public var color: String
        public var stroke: Stroke
        public var markers: Bool

        public init(name: String, points: [(x: Double, y: Double)], color: String, stroke: Stroke = .solid, markers: Bool = true) {
            self.name = name
            self.points = points
            self.color = color
            self.stroke = stroke
            self.markers = markers
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// Where to put x ticks (default: at every x of the first series).
    public var xTicks: [Double]?
    public var width = 640.0
    public var height = 420.0

    public init(title: String, xLabel: String, yLabel: String, series: [Series], xTicks: [Double]? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.xTicks = xTicks
    }

    // MARK: - Layout

    /// "Nice" tick values (1, 2, 2.5 or 5 × 10^k steps) covering [low, high], about `count` of them.
    static func niceTicks(_ low: Double, _ high: Double, count: Int = 6) -> [Double] {
        var low = low, high = high
        if !(high > low) {
            let pad = low == 0 ? 0.5 : abs(low) * 0.1
            low -= pad
            high += pad
        }
        let raw = (high - low) / Double(max(count - 1, 1))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2.0, 2.5, 5.0, 10.0].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let first = (low / step).rounded(.down) * step
        let last = (high / step).rounded(.up) * step
        var ticks: [Double] = []
        var value = first
        while value <= last + step * 1e-9 {
            ticks.append(abs(value) < step * 1e-9 ? 0 : value)
            value += step
        }
        return ticks
    }

    static func format(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e6 { return String(Int(value)) }
        var text = String(format: "%.3f", value)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    // MARK: - Rendering

    /// The SVG document.
    public func svg() -> String {
        let left = 72.0, right = 24.0, top = 44.0, bottom = 96.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let finite = series.flatMap { $0.points }.filter { $0.x.isFinite && $0.y.isFinite }
        let xs = finite.map(\.x), ys = finite.map(\.y)
        let xTickValues = xTicks ?? (series.first?.points.map(\.x) ?? [0, 1])
        let xLow = min(xs.min() ?? 0, xTickValues.min() ?? 0), xHigh = max(xs.max() ?? 1, xTickValues.max() ?? 1)
        let yTickValues = Self.niceTicks(ys.min() ?? 0, ys.max() ?? 1)
        let yLow = yTickValues.first!, yHigh = yTickValues.last!
        func px(_ x: Double) -> Double { left + (xHigh > xLow ? (x - xLow) / (xHigh - xLow) : 0.5) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - (yHigh > yLow ? (y - yLow) / (yHigh - yLow) : 0.5) * plotHeight }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        let gridColor = "#e0e0e0"

        var lines: [String] = []
        lines.append(#"<?xml version="1.0" encoding="UTF-8"?>"#)
        lines.append(#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(f(width))" height="\#(f(height))" viewBox="0 0 \#(f(width)) \#(f(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">"#)
        lines.append(#"<rect x="0" y="0" width="\#(f(width))" height="\#(f(height))" fill="white"/>"#)
        lines.append(#"<text x="\#(f(width / 2))" y="24" text-anchor="middle" font-size="15">\#(Self.escape(title))</text>"#)
        // Grid and ticks.
        for tick in yTickValues {
            let y = py(tick)
            lines.append(#"<line x1="\#(f(left))" y1="\#(f(y))" x2="\#(f(left + plotWidth))" y2="\#(f(y))" stroke="\#(gridColor)"/>"#)
            lines.append(#"<text x="\#(f(left - 8))" y="\#(f(y + 4))" text-anchor="end">\#(Self.format(tick))</text>"#)
        }
        for tick in xTickValues {
            let x = px(tick)
            lines.append(#"<line x1="\#(f(x))" y1="\#(f(top + plotHeight))" x2="\#(f(x))" y2="\#(f(top + plotHeight + 5))" stroke="black"/>"#)
            lines.append(#"<text x="\#(f(x))" y="\#(f(top + plotHeight + 20))" text-anchor="middle">\#(Self.format(tick))</text>"#)
        }
        // Axes and labels.
        lines.append(#"<rect x="\#(f(left))" y="\#(f(top))" width="\#(f(plotWidth))" height="\#(f(plotHeight))" fill="none" stroke="black"/>"#)
        lines.append(#"<text x="\#(f(left + plotWidth / 2))" y="\#(f(top + plotHeight + 40))" text-anchor="middle">\#(Self.escape(xLabel))</text>"#)
        lines.append(#"<text x="18" y="\#(f(top + plotHeight / 2))" text-anchor="middle" transform="rotate(-90 18 \#(f(top + plotHeight / 2)))">\#(Self.escape(yLabel))</text>"#)
        // Series.
        for item in series {
            let points = item.points.filter { $0.x.isFinite && $0.y.isFinite }
            guard !points.isEmpty else { continue }
            let dash = item.stroke == .dashed ? #" stroke-dasharray="8 5""# : (item.stroke == .dotted ? #" stroke-dasharray="2 4""# : "")
            let path = points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            lines.append(#"<polyline fill="none" stroke="\#(item.color)" stroke-width="2"\#(dash) points="\#(path)"/>"#)
            if item.markers {
                for point in points {
                    lines.append(#"<circle cx="\#(f(px(point.x)))" cy="\#(f(py(point.y)))" r="3.5" fill="\#(item.color)"/>"#)
                }
            }
        }
        // Legend below the x label, one entry per series.
        var legendX = left
        let legendY = top + plotHeight + 66
        for item in series {
            let dash = item.stroke == .dashed ? #" stroke-dasharray="8 5""# : (item.stroke == .dotted ? #" stroke-dasharray="2 4""# : "")
            lines.append(#"<line x1="\#(f(legendX))" y1="\#(f(legendY))" x2="\#(f(legendX + 28))" y2="\#(f(legendY))" stroke="\#(item.color)" stroke-width="2"\#(dash)/>"#)
            lines.append(#"<text x="\#(f(legendX + 34))" y="\#(f(legendY + 4))">\#(Self.escape(item.name))</text>"#)
            legendX += 44 + Double(item.name.count) * 6.6
        }
        lines.append("</svg>")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes ``svg()`` to `path` atomically.
    public func write(to path: String) throws {
        try SafeFiles.replace(path, with: Data(svg().utf8))
    }
}
