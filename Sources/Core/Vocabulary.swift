// The shared vocabulary (modality, task, label transform, seeded randomness), the
// configuration (its table, decoding and presets) and the parameter layout are part of this
// module's API: every file sees them without importing them itself.
@_exported import VAVLVocabulary
@_exported import VAVLConfig
@_exported import VAVLParameters
