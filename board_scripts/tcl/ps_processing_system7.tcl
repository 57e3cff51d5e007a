# --- Zynq-7000 processing system (board_scripts/tcl/ps_processing_system7.tcl) -------------------
# Creates the PS with the board preset (DDR, MIO, clocks from the board files), the M_AXI_GP0
# master for register access, the S_AXI_HP0 slave for the DMA, and FCLK_CLK0 at the PL clock.
# Returns the pins the block design wires up, under the names bitstream.tcl expects.

proc sf_create_ps {name clock_mhz hp_data_width} {
    set ps [create_bd_cell -type ip -vlnv [sf_latest_ip xilinx.com:ip:processing_system7] $name]
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} $ps
    set_property -dict [list \
        CONFIG.PCW_USE_M_AXI_GP0 {1} \
        CONFIG.PCW_USE_S_AXI_HP0 {1} \
        CONFIG.PCW_S_AXI_HP0_DATA_WIDTH $hp_data_width \
        CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $clock_mhz \
    ] $ps
    return [dict create \
        clk $name/FCLK_CLK0  resetn $name/FCLK_RESET0_N \
        gp $name/M_AXI_GP0   gp_clk $name/M_AXI_GP0_ACLK \
        hp $name/S_AXI_HP0   hp_clk $name/S_AXI_HP0_ACLK]
}
