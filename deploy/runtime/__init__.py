"""The board runtime: the PYNQ driver, the emulated board, the board's command line (numpy, pynq, stdlib)."""
