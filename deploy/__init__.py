"""Board stage: weight-set and register-map formats, the PYNQ driver, and the emulated board.

Everything in this package imports only numpy, pynq and the standard library, because it runs on
the board.
"""
