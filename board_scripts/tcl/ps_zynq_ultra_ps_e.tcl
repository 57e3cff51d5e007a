# --- Zynq UltraScale+ processing system (board_scripts/tcl/ps_zynq_ultra_ps_e.tcl) ---------------
# Creates the PS with the board preset, then keeps exactly the ports the design uses:
#   M_AXI_HPM0_FPD (CONFIG.PSU__USE__M_AXI_GP0) for register access,
#   S_AXI_HP0_FPD  (CONFIG.PSU__USE__S_AXI_GP2) for the DMA, at the board's HP width,
#   pl_clk0 at the PL clock.
# The preset is the board files' (for the Kria K26 SOM, the module's DDR4/QSPI/eMMC from kv260_som plus
# the KV260 carrier's MIO peripherals through the board connection bitstream.tcl sets first).
# Board presets also enable M_AXI_HPM1_FPD / M_AXI_HPM0_LPD; they are switched off so no port is left
# without a clock. Returns the pins the block design wires up, under the names bitstream.tcl expects.

proc sf_create_ps {name clock_mhz hp_data_width} {
    set ps [create_bd_cell -type ip -vlnv [sf_latest_ip xilinx.com:ip:zynq_ultra_ps_e] $name]
    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset "1"} $ps
    set_property -dict [list \
        CONFIG.PSU__USE__M_AXI_GP0 {1} \
        CONFIG.PSU__USE__M_AXI_GP1 {0} \
        CONFIG.PSU__USE__M_AXI_GP2 {0} \
        CONFIG.PSU__USE__S_AXI_GP2 {1} \
        CONFIG.PSU__SAXIGP2__DATA_WIDTH $hp_data_width \
        CONFIG.PSU__FPGA_PL0_ENABLE {1} \
        CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $clock_mhz \
    ] $ps
    return [dict create \
        clk $name/pl_clk0         resetn $name/pl_resetn0 \
        gp $name/M_AXI_HPM0_FPD   gp_clk $name/maxihpm0_fpd_aclk \
        hp $name/S_AXI_HP0_FPD    hp_clk $name/saxihp0_fpd_aclk]
}
