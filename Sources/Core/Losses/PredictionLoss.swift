/// The training loss of a task (docs/DESIGN.md §3): the one place that says which loss a
/// task trains with. Algorithm 1 and the unimodal baseline both call it.
public enum PredictionLoss {
    /// This rank's share of the loss of `predictions` against `labels`, normalised by the
    /// global utterance count, and dL/dpredictions in `gradient`. Summing the shares over
    /// ranks gives the loss. Cross-entropy (categorical; soft labels if `configuration`
    /// says so) and L1 (sentiment) are sums over utterances; CCC (dimensional) is a batch
    /// statistic, whose sufficient statistics are summed over ranks here (one collective,
    /// issued whatever the local row count) and whose value every rank then holds, so its
    /// share is the value divided by the world size.
    public static func compute(_ configuration: VAVLConfiguration, predictions: Matrix, labels: Matrix,
                               globalCount: Int, collectives: Collectives, gradient: Matrix) -> Double {
        switch configuration.task {
        case .categorical:
            return Losses.crossEntropy(logits: predictions, labels: labels, soft: configuration.softLabel,
                                       globalCount: globalCount, gradient: gradient)
        case .sentiment:
            return Losses.meanAbsoluteError(predictions: predictions, labels: labels, globalCount: globalCount,
                                            gradient: gradient)
        case .dimensional:
            var statistics = Losses.concordanceStatistics(predictions: predictions, labels: labels)
            if statistics.isEmpty { statistics = [Double](repeating: 0, count: 6 * configuration.outputDimension) }
            collectives.sum(&statistics)
            let loss = Losses.concordanceLoss(predictions: predictions, labels: labels, globalStatistics: statistics,
                                              gradient: gradient)
            return loss / Double(collectives.worldSize)
        }
    }
}
