// The shared vocabulary (modality, task, label transform, seeded randomness) and the
// configuration (its table, decoding and presets) are part of this module's API: every file
// sees them without importing them itself.
@_exported import VAVLVocabulary
@_exported import VAVLConfig
