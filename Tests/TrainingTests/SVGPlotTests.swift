import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import VAVLExperiments
import VAVLTraining
import XCTest

/// The SVG writer produces a well-formed document a browser opens: parsed here with an XML
/// parser, the root is <svg> in the SVG namespace, every series is a polyline with its points.
final class SVGPlotTests: XCTestCase {
    /// Collects element names and attributes; fails on malformed XML.
    final class Collector: NSObject, XMLParserDelegate {
        var elements: [(name: String, attributes: [String: String])] = []
        var text = ""
        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            elements.append((elementName, attributes))
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
    }

    func parse(_ svg: String) throws -> Collector {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        XCTAssertTrue(parser.parse(), "malformed SVG: \(parser.parserError.map { "\($0)" } ?? "?")\n\(svg)")
        return collector
    }

    func testRobustnessPlotIsWellFormedSVG() throws {
        let xs = stride(from: 0.0, through: 90, by: 10).map { $0 }
        let plot = LinePlot(title: "Missing audio frames <test> & \"quotes\"", xLabel: "% of masked audio frames", yLabel: "F1-macro",
                            series: [
                                .init(name: "audio-visual head", points: xs.map { ($0, 0.8 - $0 / 150) }, color: "#1f77b4"),
                                .init(name: "video-only head", points: xs.map { ($0, 0.4) }, color: "#d62728", stroke: .dashed, markers: false),
                                .init(name: "with a gap", points: xs.map { ($0, $0 == 50 ? .nan : 0.5) }, color: "#7f7f7f", stroke: .dotted),
                            ], xTicks: xs)
        let folder = NSTemporaryDirectory() + "vavl-svg-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/plot.svg"
        try plot.write(to: path)
        let svg = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<?xml"))
        let parsed = try parse(svg)
        XCTAssertEqual(parsed.elements.first?.name, "svg")
        XCTAssertEqual(parsed.elements.first?.attributes["xmlns"], "http://www.w3.org/2000/svg")
        let polylines = parsed.elements.filter { $0.name == "polyline" }
        XCTAssertEqual(polylines.count, 3)
        XCTAssertEqual(polylines[0].attributes["points"]?.split(separator: " ").count, 10)
        XCTAssertEqual(polylines[2].attributes["points"]?.split(separator: " ").count, 9, "the NaN point is skipped")
        XCTAssertNotNil(polylines[1].attributes["stroke-dasharray"], "the reference line is dashed")
        XCTAssertEqual(parsed.elements.filter { $0.name == "circle" }.count, 19, "markers on the AV and gap series only")
        // Titles and labels are escaped text, x ticks at every level.
        XCTAssertTrue(parsed.text.contains("Missing audio frames <test> & \"quotes\""))
        XCTAssertTrue(parsed.text.contains("% of masked audio frames"))
        for tick in ["0", "50", "90"] { XCTAssertTrue(parsed.text.contains(tick)) }
        XCTAssertFalse(svg.contains("nan"), "no NaN coordinates")
        // Every coordinate lies inside the canvas.
        for polyline in polylines {
            for point in polyline.attributes["points"]!.split(separator: " ") {
                let xy = point.split(separator: ",").compactMap { Double($0) }
                XCTAssertEqual(xy.count, 2)
                XCTAssertTrue((0...640).contains(xy[0]) && (0...420).contains(xy[1]), "\(xy) outside the canvas")
            }
        }
    }

    func testMalformedSVGIsCaught() throws {
        // The parser check above would catch a broken document (e.g. an unescaped '&').
        let parser = XMLParser(data: Data(#"<svg xmlns="http://www.w3.org/2000/svg"><text>a & b</text></svg>"#.utf8))
        XCTAssertFalse(parser.parse())
    }

    func testConstantSeriesStillGetsAnAxis() throws {
        let plot = LinePlot(title: "flat", xLabel: "x", yLabel: "y",
                            series: [.init(name: "flat", points: [(0, 0.5), (10, 0.5)], color: "black")])
        let parsed = try parse(plot.svg())
        XCTAssertEqual(parsed.elements.filter { $0.name == "polyline" }.count, 1)
        XCTAssertFalse(plot.svg().contains("nan") || plot.svg().contains("inf"))
    }
}
