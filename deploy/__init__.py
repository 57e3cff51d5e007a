"""Board stage. Two sub-packages, both of which run on the board and import only numpy, pynq and the
standard library (tests/test_layout.py enforces it):

* :mod:`semifreddo.deploy.contract`: what every stage and the board agree on: control registers,
  the IP's identity and artifact formats (``interface``), the board table (``boards``), errors,
  atomic file writes, the register map, weight sets, stream packing and the C simulation's ABI.
* :mod:`semifreddo.deploy.runtime`: the PYNQ driver, the emulated board, the board-side command
  line, the runtime benchmark and the notebook.
"""
