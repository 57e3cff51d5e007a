"""Model stage: specs, the QKeras SemifreddoNet builder, training, and the frozen-core artifact."""
