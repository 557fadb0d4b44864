import Foundation
import VAVLData
import XCTest

/// Train-split statistics (DESIGN §3) against a direct two-pass computation in Double.
final class FeatureStatisticsTests: CorpusTestCase {
    /// Mean and population std over the rows of `matrices` (each T × d), two passes.
    func direct(_ matrices: [[Float]], dimension: Int) -> (mean: [Double], std: [Double]) {
        var sum = [Double](repeating: 0, count: dimension)
        var count = 0
        for matrix in matrices {
            for (index, value) in matrix.enumerated() { sum[index % dimension] += Double(value) }
            count += matrix.count / dimension
        }
        let mean = sum.map { $0 / Double(count) }
        var squares = [Double](repeating: 0, count: dimension)
        for matrix in matrices {
            for (index, value) in matrix.enumerated() {
                let deviation = Double(value) - mean[index % dimension]
                squares[index % dimension] += deviation * deviation
            }
        }
        return (mean, squares.map { ($0 / Double(count)).squareRoot() })
    }

    func testStatisticsEqualADirectComputationOverTrainFramesOnly() throws {
        let file = path("stats.h5")
        let writer = try CorpusWriter(path: file, description: CorpusDescription(
            task: .categorical, labelNames: ["x", "y"], audioDimension: 4, videoDimension: 3), chunkRows: (7, 7))
        var random = Xoshiro256(seed: 11)
        var trainAudio: [[Float]] = [], trainVideo: [[Float]] = []
        for index in 0..<40 {
            let split: Split = [.train, .train, .dev, .test][index % 4]
            // A large common offset per dimension: a Σx² − n·mean² formula would lose digits here.
            let audio: [Float] = (0..<((index % 9 + 1) * 4)).map { (k: Int) -> Float in
                Float(1e4) + Float(k % 4) * 100 + Float(random.normal())
            }
            let videoCount = index % 5 == 0 ? 0 : (index % 6 + 2) * 3
            let video: [Float] = (0..<videoCount).map { _ -> Float in Float(-50) + Float(random.normal()) * 3 }
            try writer.append(id: "u\(index)", speaker: "s", split: split, labels: [1, 0], audio: audio, video: video)
            if split == .train { trainAudio.append(audio); if !video.isEmpty { trainVideo.append(video) } }
        }
        try writer.finish()
        let corpus = try Corpus.open(file)
        for (modality, matrices, dimension) in [(Modality.audio, trainAudio, 4), (.video, trainVideo, 3)] {
            let expected = direct(matrices, dimension: dimension)
            let computed = try XCTUnwrap(computeFeatureStatistics(corpus, modality))
            let stored = try XCTUnwrap(corpus.storedStatistics(modality))
            XCTAssertEqual(computed.frameCount, matrices.reduce(0) { $0 + $1.count / dimension })
            XCTAssertEqual(stored.frameCount, computed.frameCount)
            for j in 0..<dimension {
                for statistics in [computed, stored] {
                    XCTAssertEqual(statistics.mean[j], expected.mean[j], accuracy: 1e-9 * abs(expected.mean[j]))
                    XCTAssertEqual(statistics.std[j], expected.std[j], accuracy: 1e-9 * expected.std[j])
                }
            }
            XCTAssertEqual(try corpus.featureStatistics(modality), stored)
        }
    }

    func testNoTrainFramesGivesNil() throws {
        let file = path("none.h5")
        let writer = try CorpusWriter(path: file, description: CorpusDescription(
            task: .categorical, labelNames: ["x", "y"], audioDimension: 2, videoDimension: 2))
        try writer.append(id: "a", speaker: "s", split: .train, labels: [1, 0], audio: [1, 2], video: [])
        try writer.append(id: "b", speaker: "s", split: .dev, labels: [1, 0], audio: [], video: [3, 4])
        try writer.finish()
        let corpus = try Corpus.open(file)
        XCTAssertNil(try computeFeatureStatistics(corpus, .video))
        XCTAssertNil(corpus.storedStatistics(.video))
        XCTAssertEqual(try computeFeatureStatistics(corpus, .audio)?.mean, [1, 2])
        XCTAssertEqual(try computeFeatureStatistics(corpus, .audio)?.std, [0, 0])
    }

    func testAccumulatorIsIndependentOfBatching() {
        var random = Xoshiro256(seed: 5)
        let values = (0..<(3 * 50)).map { _ in Float(random.normal()) * 2 + 7 }
        var whole = FeatureStatisticsAccumulator(dimension: 3)
        whole.add(values)
        var pieces = FeatureStatisticsAccumulator(dimension: 3)
        var start = 0
        for rows in [1, 7, 2, 30, 10] {
            pieces.add(Array(values[(start * 3)..<((start + rows) * 3)]))
            start += rows
        }
        let (a, b) = (whole.statistics!, pieces.statistics!)
        XCTAssertEqual(a.frameCount, 50)
        for j in 0..<3 {
            XCTAssertEqual(a.mean[j], b.mean[j], accuracy: 1e-12)
            XCTAssertEqual(a.std[j], b.std[j], accuracy: 1e-12)
        }
    }

    func testNormalize() {
        let statistics = FeatureStatistics(mean: [1, -2], std: [2, 0], frameCount: 3)
        var frames: [Float] = [3, -2, 1, -1]
        frames.withUnsafeMutableBufferPointer { statistics.normalize($0) }
        XCTAssertEqual(frames[0], Float(2 / (2 + 1e-6)))
        XCTAssertEqual(frames[1], 0)
        XCTAssertEqual(frames[2], 0)
        XCTAssertEqual(frames[3], Float(1 / 1e-6))
    }
}
