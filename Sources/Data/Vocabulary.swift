// The shared vocabulary (modality, task, label transform, seeded randomness) is part of
// this module's API: every file sees it without importing it itself.
@_exported import VAVLVocabulary
