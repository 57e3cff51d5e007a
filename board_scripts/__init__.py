"""Synthesis and board flow: board table, Vitis HLS and Vivado Tcl, deploy bundles."""
