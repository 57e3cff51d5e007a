"""Hardware cost model and design-space exploration (issue 6).

``semifreddo estimate`` prices the SemifreddoNet IP, its fully configurable twin and a
general-purpose accelerator from a Yosys-characterized unit-cost table; ``semifreddo explore``
sweeps frozen fraction x bit widths x frozen format with short training runs. See README.md in
this folder for how the model works and what it assumes.
"""
