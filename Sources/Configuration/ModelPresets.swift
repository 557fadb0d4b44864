import VAVLVocabulary

extension VAVLConfiguration {
    /// The paper's sizes (DESIGN §2; 54,371,218 parameters at d_a 1024, d_v 1408, 6 outputs).
    public static func paper(audio: Int = 1024, video: Int = 1408, outputs: Int = 6) -> VAVLConfiguration {
        var config = VAVLConfiguration()
        config.audioDimension = audio
        config.videoDimension = video
        config.outputDimension = outputs
        return config
    }

    /// A model small enough to train in minutes on two cores: dim 64, 4 heads, 1+1+1 blocks.
    public static func small(audio: Int, video: Int, outputs: Int) -> VAVLConfiguration {
        var config = paper(audio: audio, video: video, outputs: outputs)
        config.projectionDimension = 32
        config.dim = 64
        config.heads = 4
        config.acousticBlocks = 1
        config.visualBlocks = 1
        config.sharedBlocks = 1
        config.convolutionKernel = 15
        config.headHidden1 = 64
        config.headHidden2 = 32
        return config
    }

    /// A model for unit tests: dim 16, 2 heads, 1+1+1 blocks, kernel 5.
    public static func tiny(audio: Int, video: Int, outputs: Int) -> VAVLConfiguration {
        var config = paper(audio: audio, video: video, outputs: outputs)
        config.projectionDimension = 8
        config.projectionKernel = 3
        config.dim = 16
        config.heads = 2
        config.acousticBlocks = 1
        config.visualBlocks = 1
        config.sharedBlocks = 1
        config.feedForwardExpansion = 2
        config.convolutionKernel = 5
        config.headHidden1 = 16
        config.headHidden2 = 8
        return config
    }
}
