// The corpus side of the trainer: the HDF5 corpus format (SPEC §5), import of users'
// features, realistic synthetic corpora and train-split feature statistics.
