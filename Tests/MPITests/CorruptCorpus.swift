import HDF5
import VAVLData

/// Overwrites the first audio value of `utterance` with NaN, in place.
func corruptFirstAudioValue(path: String, utterance: Int) throws {
    let file = try HDF5File.open(path, writable: true)
    let row = Int(try file.openDataset("audio/offsets").read(as: Int64.self)[utterance])
    let features = try file.openDataset("audio/features")
    var values = try features.readRows(row..<(row + 1), as: Float.self)
    values[0] = .nan
    try features.writeRows(row..<(row + 1), values)
    file.close()
}
