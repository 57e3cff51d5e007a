# --- Vivado flow (board_scripts/tcl/bitstream.tcl) -----------------------------------------------
# Project for the board, block design (PS + AXI DMA + the semifreddo IP), synthesis,
# implementation and bitstream. Settings come from the sf() array at the top of the generated
# script; sf_create_ps comes from the PS fragment for the board's PS (ps_<ps ip>.tcl).
#
# Instance names and the DMA's VLNV come from the contract (sf(ip_instance), sf(dma_instance), sf(dma_vlnv)):
#   PS GP master ──> ctrl_interconnect ──> semifreddo_0/s_axi_ctrl   (registers, shadow bank)
#                                     └──> axi_dma_0/S_AXI_LITE      (DMA registers)
#   axi_dma_0/M_AXIS_MM2S ──> semifreddo_0/in_stream
#   semifreddo_0/out_stream ──> axi_dma_0/S_AXIS_S2MM
#   axi_dma_0/M_AXI_MM2S, M_AXI_S2MM ──> mem_interconnect ──> PS HP slave (DDR)
#   semifreddo_0/m_axi_frame ──> mem_interconnect    (only sf(frame_buffer) 1: a reused repeat group
#                                                     keeping its frame in DDR, repeat.buffer: ddr)
# One PL clock and one synchronised reset (proc_sys_reset) drive everything. Interrupt outputs are
# left unconnected: the driver polls the IP's ap_done and the DMA's idle bits.

# The IP the contract names (deploy/contract/interface.py), refused in one line if this Vivado lacks it.
proc sf_ip_in_catalog {vlnv} {
    if {[llength [get_ipdefs -all -quiet $vlnv]] == 0} {
        error "IP $vlnv (the version the driver is written for) is not in this Vivado's IP catalog"
    }
    return $vlnv
}

# The newest version of an IP in this Vivado's catalog, e.g. xilinx.com:ip:smartconnect -> ...:1.0.
proc sf_latest_ip {vlnv_prefix} {
    set defs [lsort -dictionary [get_ipdefs -all -quiet "${vlnv_prefix}:*"]]
    if {[llength $defs] == 0} {
        error "IP $vlnv_prefix is not in this Vivado's IP catalog"
    }
    return [lindex $defs end]
}

# The wanted board part, or the newest installed version of the same board's files.
proc sf_board_part {wanted} {
    if {[llength [get_board_parts -quiet $wanted]] > 0} {
        return $wanted
    }
    lassign [split $wanted :] vendor board component
    set installed [lsort -dictionary [get_board_parts -quiet "*:${board}:${component}:*"]]
    if {[llength $installed] > 0} {
        set chosen [lindex $installed end]
        puts "SEMIFREDDO-WARNING board files $wanted are not installed, using $chosen"
        return $chosen
    }
    error "board files $wanted are not installed in this Vivado; install them from the board store\
           (Vivado: Tools > Vivado Store > Boards) or copy them into\
           <Vivado>/data/xhub/boards/XilinxBoardStore/boards, then re-run"
}

# A SOM's carrier card (sf(board_connections): connector, carrier board-file VLNV, ...): its MIO
# peripherals join the PS preset. Boards without a carrier card have none.
proc sf_connect_carrier {connections} {
    if {[llength $connections] == 0} {
        return
    }
    if {[catch {set_property board_connections $connections [current_project]} message]} {
        error "the carrier card's board files ($connections) are not installed in this Vivado ($message);\
               install them from the board store (Vivado: Tools > Vivado Store > Boards), then re-run"
    }
}

# Block-design pins by name; a missing pin is an error rather than a silently dropped connection.
proc sf_pins {args} {
    set pins {}
    foreach name $args {
        set pin [get_bd_pins -quiet $name]
        if {$pin eq ""} {
            error "the block design has no pin $name"
        }
        lappend pins $pin
    }
    return $pins
}

proc sf_intf {name} {
    set pin [get_bd_intf_pins -quiet $name]
    if {$pin eq ""} {
        error "the block design has no interface $name"
    }
    return $pin
}

# Launch a run, wait for it, and fail with the run's log if it did not complete.
proc sf_run {run args} {
    global sf
    launch_runs $run {*}$args -jobs $sf(jobs)
    wait_on_run $run
    set progress [get_property PROGRESS [get_runs $run]]
    set status [get_property STATUS [get_runs $run]]
    if {$progress ne "100%" || [string match -nocase "*error*" $status] || [string match -nocase "*fail*" $status]} {
        error "$run stopped ($status, $progress); log: [get_property DIRECTORY [get_runs $run]]/runme.log"
    }
}

sf_step project {
    create_project -force $sf(project) $sf(project_dir) -part $sf(part)
    set_property board_part [sf_board_part $sf(board_part)] [current_project]
    sf_connect_carrier $sf(board_connections)
    set_property ip_repo_paths [list $sf(ip_repo)] [current_project]
    update_ip_catalog
    if {[llength [get_ipdefs -quiet $sf(ip_vlnv)]] == 0} {
        error "IP $sf(ip_vlnv) is not in $sf(ip_repo); run the synth step for this board again"
    }
}

sf_step block_design {
    create_bd_design $sf(bd)
    set ps [sf_create_ps ps $sf(clock_mhz) $sf(hp_data_width)]

    create_bd_cell -type ip -vlnv $sf(ip_vlnv) $sf(ip_instance)

    # Simple (direct register) mode: no scatter-gather. 32-bit streams as the IP's ports are; the
    # memory side as wide as the HP port. 26 length bits allow transfers of up to 64 MB.
    set dma [create_bd_cell -type ip -vlnv [sf_ip_in_catalog $sf(dma_vlnv)] $sf(dma_instance)]
    set_property -dict [list \
        CONFIG.c_include_sg {0} \
        CONFIG.c_sg_include_stscntrl_strm {0} \
        CONFIG.c_sg_length_width {26} \
        CONFIG.c_include_mm2s {1} \
        CONFIG.c_include_s2mm {1} \
        CONFIG.c_m_axis_mm2s_tdata_width {32} \
        CONFIG.c_s_axis_s2mm_tdata_width {32} \
        CONFIG.c_m_axi_mm2s_data_width $sf(hp_data_width) \
        CONFIG.c_m_axi_s2mm_data_width $sf(hp_data_width) \
    ] $dma

    create_bd_cell -type ip -vlnv [sf_latest_ip xilinx.com:ip:proc_sys_reset] rst_pl_0
    set ctrl [create_bd_cell -type ip -vlnv [sf_latest_ip xilinx.com:ip:smartconnect] ctrl_interconnect]
    set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {2}] $ctrl
    set mem [create_bd_cell -type ip -vlnv [sf_latest_ip xilinx.com:ip:smartconnect] mem_interconnect]
    set_property -dict [list CONFIG.NUM_SI [expr {$sf(frame_buffer) ? 3 : 2}] CONFIG.NUM_MI {1}] $mem

    # Control path.
    connect_bd_intf_net [sf_intf [dict get $ps gp]] [sf_intf ctrl_interconnect/S00_AXI]
    connect_bd_intf_net [sf_intf ctrl_interconnect/M00_AXI] [sf_intf $sf(ip_instance)/s_axi_ctrl]
    connect_bd_intf_net [sf_intf ctrl_interconnect/M01_AXI] [sf_intf $sf(dma_instance)/S_AXI_LITE]
    # Data path.
    connect_bd_intf_net [sf_intf $sf(dma_instance)/M_AXIS_MM2S] [sf_intf $sf(ip_instance)/in_stream]
    connect_bd_intf_net [sf_intf $sf(ip_instance)/out_stream] [sf_intf $sf(dma_instance)/S_AXIS_S2MM]
    connect_bd_intf_net [sf_intf $sf(dma_instance)/M_AXI_MM2S] [sf_intf mem_interconnect/S00_AXI]
    connect_bd_intf_net [sf_intf $sf(dma_instance)/M_AXI_S2MM] [sf_intf mem_interconnect/S01_AXI]
    connect_bd_intf_net [sf_intf mem_interconnect/M00_AXI] [sf_intf [dict get $ps hp]]
    if {$sf(frame_buffer)} {
        # The IP's AXI master to its frame buffer shares the HP port with the DMA; assign_bd_address
        # maps all of DDR for it, and the driver writes the buffer's address into the IP.
        connect_bd_intf_net [sf_intf $sf(ip_instance)/m_axi_frame] [sf_intf mem_interconnect/S02_AXI]
    }
    # Clock and reset.
    connect_bd_net -net pl_clk {*}[sf_pins [dict get $ps clk] \
        [dict get $ps gp_clk] [dict get $ps hp_clk] $sf(ip_instance)/ap_clk \
        $sf(dma_instance)/s_axi_lite_aclk $sf(dma_instance)/m_axi_mm2s_aclk $sf(dma_instance)/m_axi_s2mm_aclk \
        ctrl_interconnect/aclk mem_interconnect/aclk rst_pl_0/slowest_sync_clk]
    connect_bd_net -net ps_resetn {*}[sf_pins [dict get $ps resetn] rst_pl_0/ext_reset_in]
    connect_bd_net -net pl_resetn {*}[sf_pins rst_pl_0/peripheral_aresetn \
        $sf(ip_instance)/ap_rst_n $sf(dma_instance)/axi_resetn ctrl_interconnect/aresetn mem_interconnect/aresetn]

    assign_bd_address
    validate_bd_design
    save_bd_design
}

sf_step wrapper {
    set bd_file [get_files $sf(bd).bd]
    # Generating the block design's targets also writes the .hwh (hw_handoff) PYNQ reads.
    generate_target all $bd_file
    add_files -norecurse [make_wrapper -files $bd_file -top]
    set_property top $sf(bd)_wrapper [current_fileset]
    update_compile_order -fileset sources_1
}

sf_step synthesis {
    sf_run synth_1
}

sf_step implementation {
    sf_run impl_1 -to_step write_bitstream
    set wns [get_property STATS.WNS [get_runs impl_1]]
    if {$wns ne "" && $wns < 0} {
        puts "SEMIFREDDO-WARNING timing not met at $sf(clock_mhz) MHz (worst negative slack $wns ns)"
    }
}

sf_done
