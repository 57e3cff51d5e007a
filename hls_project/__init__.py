"""HLS stage: hls4ml conversion with a register bank for configurable weights, C simulation, estimates."""
