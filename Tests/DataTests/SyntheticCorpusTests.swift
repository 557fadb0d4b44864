import Foundation
import VAVLData
import XCTest

/// Synthetic corpora: metadata, subsets, missing modalities, durations, reproducibility,
/// the round trip through a file, and that the features carry a learnable signal.
final class SyntheticCorpusTests: CorpusTestCase {
    func testPresetMetadata() throws {
        let crema = try SyntheticPreset.cremaD.metadata()
        XCTAssertEqual(crema.labelNames, ["angry", "sad", "disgust", "fear", "neutral", "happy"])
        XCTAssertEqual(crema.utterances.count, 5820)
        XCTAssertEqual(crema.utterances.filter { $0.split == .train }.count, 4043)
        XCTAssertEqual(crema.utterances.filter { $0.split == .dev }.count, 878)
        XCTAssertEqual(crema.utterances.filter { $0.split == .test }.count, 899)
        XCTAssertEqual(crema.utterances[0], UtteranceMetadata(id: "1026_IEO_ANG_HI", speaker: "1026", split: .train,
                                                              labels: [0.856, 0.01, 0.01, 0.104, 0.01, 0.01]))
        // The bundled file is the authors' file.
        let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../shared/data/cremad_labels_partition1.csv").standardized.path
        if FileManager.default.fileExists(atPath: shared) {
            XCTAssertEqual(try LabelTable.read(shared).rows, try BundledLabelFile.cremaD.read().rows)
        }

        let msp = try SyntheticPreset.mspImprov.metadata()
        XCTAssertEqual(msp.labelNames, ["EmoAct", "EmoVal", "EmoDom"])
        XCTAssertEqual(msp.utterances.count, 8385)
        XCTAssertTrue(msp.utterances.allSatisfy { $0.labels.allSatisfy { (1...5).contains($0) } })

        let mosei = try SyntheticPreset.mosei.metadata()
        XCTAssertEqual(mosei.labelNames, ["sentiment"])
        XCTAssertEqual(mosei.utterances.filter { $0.split == .train }.count, 16_326)
        XCTAssertEqual(mosei.utterances.filter { $0.split == .dev }.count, 1_871)
        XCTAssertEqual(mosei.utterances.filter { $0.split == .test }.count, 4_659)
        XCTAssertEqual(Set(mosei.utterances.map(\.id)).count, mosei.utterances.count)
        XCTAssertTrue(mosei.utterances.allSatisfy { utterance in
            let thirds = Double(utterance.labels[0]) * 3
            return (-3...3).contains(utterance.labels[0]) && abs(thirds - thirds.rounded()) < 1e-4
        })
        // Splits are video-disjoint (a speaker is a video).
        let speakersBySplit = Split.allCases.map { split in Set(mosei.utterances.filter { $0.split == split }.map(\.speaker)) }
        XCTAssertTrue(speakersBySplit[0].isDisjoint(with: speakersBySplit[1]) && speakersBySplit[0].isDisjoint(with: speakersBySplit[2]))
        XCTAssertEqual(try SyntheticPreset.mosei.metadata().utterances, mosei.utterances, "MOSEI metadata is the same every time")
    }

    func testSubsetsKeepEverySplitAndAreSeeded() throws {
        for preset in SyntheticPreset.allCases {
            var options = SyntheticOptions(preset: preset, output: path("x.h5"))
            options.utterances = 3
            let tiny = try SyntheticCorpusGenerator(options)
            XCTAssertEqual(Set(tiny.utterances.map(\.split)), Set(Split.allCases), "\(preset)")
            options.utterances = 101
            options.seed = 1
            let first = try SyntheticCorpusGenerator(options)
            XCTAssertEqual(first.utterances.count, 101)
            XCTAssertEqual(Set(first.utterances.map(\.split)), Set(Split.allCases))
            XCTAssertEqual(try SyntheticCorpusGenerator(options).utterances, first.utterances)
            options.seed = 2
            XCTAssertNotEqual(try SyntheticCorpusGenerator(options).utterances, first.utterances)
        }
        var options = SyntheticOptions(preset: .cremaD, output: path("x.h5"))
        options.utterances = 2
        assertCorpusError(file: path("x.h5"), utterance: nil, mentioning: "keep all 3 splits") {
            _ = try SyntheticCorpusGenerator(options)
        }
    }

    /// Dimensions outside the model's range are refused before anything is generated.
    func testDimensionsOutOfRangeAreRefused() {
        for (audio, video) in [(0, 10), (10, -3), (100_000_000, 20)] {
            var options = SyntheticOptions(preset: .cremaD, output: path("dims.h5"))
            (options.audioDimension, options.videoDimension) = (audio, video)
            XCTAssertThrowsError(try synthesizeCorpus(options)) { XCTAssertTrue("\($0)".contains("1…65536"), "\($0)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("dims.h5")))
        }
    }

    func testMissingModalityFractionsAndDurations() throws {
        var options = SyntheticOptions(preset: .mspImprov, output: path("x.h5"))
        options.utterances = 200
        options.audioOnlyFraction = 0.2
        options.videoOnlyFraction = 0.15
        options.audioDimension = 4
        options.videoDimension = 4
        let generator = try SyntheticCorpusGenerator(options)
        XCTAssertEqual(zip(generator.hasAudio, generator.hasVideo).filter { $0 && !$1 }.count, 40)
        XCTAssertEqual(zip(generator.hasAudio, generator.hasVideo).filter { !$0 && $1 }.count, 30)
        XCTAssertEqual(zip(generator.hasAudio, generator.hasVideo).filter { !$0 && !$1 }.count, 0)
        for preset in SyntheticPreset.allCases {
            options.preset = preset
            options.audioOnlyFraction = 0
            options.videoOnlyFraction = 0
            let generator = try SyntheticCorpusGenerator(options)
            let seconds = { () -> ClosedRange<Double> in
                switch preset { case .cremaD: return 1.5...4; case .mspImprov: return 2...8; case .mosei: return 3...10 }
            }()
            for index in generator.utterances.indices {
                let audio = generator.frameCount(.audio, utterance: index), video = generator.frameCount(.video, utterance: index)
                XCTAssertTrue(seconds.contains(Double(audio) / 50), "\(preset): \(audio) audio frames")
                XCTAssertEqual(Double(audio) / 50, Double(video) / 30, accuracy: 0.04)
            }
        }
        options.audioOnlyFraction = 0.7
        options.videoOnlyFraction = 0.4
        assertCorpusError(file: path("x.h5"), utterance: nil, mentioning: "more than 1") { _ = try SyntheticCorpusGenerator(options) }
    }

    func testSynthRoundTripEqualsTheGenerator() throws {
        var options = SyntheticOptions(preset: .cremaD, output: path("crema.h5"))
        options.audioDimension = 6
        options.videoDimension = 5
        options.utterances = 40
        options.audioOnlyFraction = 0.1
        options.videoOnlyFraction = 0.1
        options.seed = 9
        let report = try synthesizeCorpus(options)
        XCTAssertEqual(contents(), ["crema.h5"])
        XCTAssertEqual(report.utterances, 40)
        XCTAssertEqual(report.audioOnly, 4)
        XCTAssertEqual(report.videoOnly, 4)

        let generator = try SyntheticCorpusGenerator(options)
        let corpus = try Corpus.open(options.output)
        XCTAssertEqual(corpus.task, .categorical)
        XCTAssertEqual(corpus.labelNames, ["angry", "sad", "disgust", "fear", "neutral", "happy"])
        XCTAssertEqual(corpus.ids, generator.utterances.map(\.id))
        XCTAssertEqual(corpus.speakers, generator.utterances.map(\.speaker))
        XCTAssertEqual(corpus.splits, generator.utterances.map(\.split))
        XCTAssertEqual(corpus.labels, generator.utterances.flatMap(\.labels))
        for index in 0..<corpus.utteranceCount {
            for modality in Modality.allCases {
                let count = generator.frameCount(modality, utterance: index) * corpus.dimension(modality)
                var expected = [Float](repeating: 0, count: count)
                expected.withUnsafeMutableBufferPointer { generator.generate(modality, utterance: index, into: $0) }
                XCTAssertEqual(try corpus.frames(modality, utterance: index), expected)
            }
        }
        // inspect agrees with the report.
        let summary = CorpusSummary(corpus)
        XCTAssertEqual(summary.utterances, 40)
        XCTAssertEqual(summary.splits.map(\.audioOnly).reduce(0, +), 4)
        XCTAssertEqual(summary.splits.map(\.videoOnly).reduce(0, +), 4)
        XCTAssertEqual(summary.frames[0].total, report.audioFrames)
        XCTAssertEqual(summary.frames[1].total, report.videoFrames)
        XCTAssertEqual(summary.labels.compactMap(\.hardLabelCount).reduce(0, +), 40)
        XCTAssertEqual(summary.bytes, report.bytes)
        XCTAssertTrue(summary.text.contains("audio+video"))
        XCTAssertTrue(validateCorpus(options.output).isValid)
    }

    func testFeaturesAreReproducibleAndSubsetIndependent() throws {
        var options = SyntheticOptions(preset: .mosei, output: path("x.h5"))
        options.audioDimension = 3
        options.videoDimension = 2
        options.utterances = 30
        let small = try SyntheticCorpusGenerator(options)
        options.utterances = 60
        let larger = try SyntheticCorpusGenerator(options)
        func frames(_ generator: SyntheticCorpusGenerator, _ index: Int) -> [Float] {
            var values = [Float](repeating: 0, count: generator.frameCount(.audio, utterance: index) * 3)
            values.withUnsafeMutableBufferPointer { generator.generate(.audio, utterance: index, into: $0) }
            return values
        }
        let shared = Set(small.utterances.map(\.id)).intersection(larger.utterances.map(\.id))
        for id in shared {
            let a = small.utterances.firstIndex { $0.id == id }!, b = larger.utterances.firstIndex { $0.id == id }!
            XCTAssertEqual(frames(small, a), frames(larger, b))
        }
        options.seed = 77
        options.utterances = 30
        let reseeded = try SyntheticCorpusGenerator(options)
        if let index = reseeded.utterances.firstIndex(where: { $0.id == small.utterances[0].id }) {
            XCTAssertNotEqual(frames(reseeded, index), frames(small, 0))
        }
    }

    /// A nearest-class-mean classifier on mean-pooled, train-normalised features must score
    /// well above chance on each modality, audio clearly above video, and audio-visual
    /// (concatenated) at least as well as audio.
    func testCategoricalSignalIsLearnableAndAudioIsStronger() throws {
        var options = SyntheticOptions(preset: .cremaD, output: path("signal.h5"))
        options.audioDimension = 16
        options.videoDimension = 16
        options.utterances = 1200
        options.seed = 3
        try synthesizeCorpus(options)
        let corpus = try Corpus.open(options.output)
        let audio = try pooledFeatures(corpus, .audio), video = try pooledFeatures(corpus, .video)
        let classes = corpus.labelCount
        let hard = (0..<corpus.utteranceCount).map { utterance -> Int in
            let row = Array(corpus.labels(of: utterance))
            return row.firstIndex(of: row.max()!)!
        }
        func accuracy(_ features: [[Double]]) -> Double {
            let train = corpus.utterances(in: .train), test = corpus.utterances(in: .test) + corpus.utterances(in: .dev)
            let dimension = features[0].count
            var means = [[Double]](repeating: [Double](repeating: 0, count: dimension), count: classes)
            var counts = [Double](repeating: 0, count: classes)
            for u in train { counts[hard[u]] += 1; for j in 0..<dimension { means[hard[u]][j] += features[u][j] } }
            for c in 0..<classes { for j in 0..<dimension { means[c][j] /= max(counts[c], 1) } }
            let correct = test.filter { u in
                let distances = means.map { mean in zip(mean, features[u]).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
                return distances.firstIndex(of: distances.min()!)! == hard[u]
            }.count
            return Double(correct) / Double(test.count)
        }
        let (a, v, av) = (accuracy(audio), accuracy(video), accuracy(zip(audio, video).map { $0 + $1 }))
        let majority = Double(Dictionary(grouping: hard, by: { $0 }).values.map(\.count).max()!) / Double(hard.count)
        print("nearest class mean accuracy: audio \(a), video \(v), audio-visual \(av), majority \(majority)")
        XCTAssertGreaterThan(v, majority + 0.1, "video \(v), majority \(majority)")
        XCTAssertGreaterThan(a, v + 0.1, "audio \(a), video \(v)")
        XCTAssertGreaterThan(av, a - 0.02, "audio-visual \(av), audio \(a)")
    }

    /// For dimensional labels: the correlation of a one-direction linear probe (the train
    /// cross-covariance of pooled features and the attribute) with the attribute on held-out
    /// utterances is clearly positive on both modalities, higher for audio on arousal.
    func testDimensionalSignalIsLearnable() throws {
        var options = SyntheticOptions(preset: .mspImprov, output: path("msp.h5"))
        options.audioDimension = 12
        options.videoDimension = 12
        options.utterances = 900
        options.seed = 4
        try synthesizeCorpus(options)
        let corpus = try Corpus.open(options.output)
        let train = corpus.utterances(in: .train), test = corpus.utterances(in: .test) + corpus.utterances(in: .dev)
        func correlation(_ x: [Double], _ y: [Double]) -> Double {
            let mx = x.reduce(0, +) / Double(x.count), my = y.reduce(0, +) / Double(y.count)
            let sxy = zip(x, y).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
            let sxx = x.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }, syy = y.reduce(0) { $0 + ($1 - my) * ($1 - my) }
            return sxy / (sxx * syy).squareRoot()
        }
        func probe(_ modality: Modality, _ column: Int) throws -> Double {
            let features = try pooledFeatures(corpus, modality)
            let y = (0..<corpus.utteranceCount).map { Double(corpus.labels[$0 * 3 + column]) }
            let dimension = features[0].count
            let meanY = train.reduce(0) { $0 + y[$1] } / Double(train.count)
            var direction = [Double](repeating: 0, count: dimension)
            for u in train { for j in 0..<dimension { direction[j] += features[u][j] * (y[u] - meanY) } }
            let scores = test.map { u in zip(direction, features[u]).reduce(0) { $0 + $1.0 * $1.1 } }
            return correlation(scores, test.map { y[$0] })
        }
        let audioArousal = try probe(.audio, 0), videoArousal = try probe(.video, 0), videoValence = try probe(.video, 1)
        print("probe correlation: audio arousal \(audioArousal), video arousal \(videoArousal), video valence \(videoValence)")
        XCTAssertGreaterThan(audioArousal, 0.6)
        XCTAssertGreaterThan(videoValence, 0.4)
        XCTAssertGreaterThan(audioArousal, videoArousal + 0.1)
    }
}
