# --- Vitis HLS flow (board_scripts/tcl/hls.tcl) --------------------------------------------------
# C simulation, C synthesis, optional C/RTL co-simulation, then export of the IP to the Vivado IP
# catalog under the VLNV that the block design instantiates. Settings come from the sf() array set
# at the top of the generated script. Runs in the staging folder, so every path below is relative
# to it or absolute.

sf_step project {
    open_project -reset $sf(hls_project)
    set_top $sf(top)
    foreach source $sf(sources) {
        add_files $source -cflags $sf(cflags)
    }
    foreach bench $sf(testbench) {
        add_files -tb $bench -cflags $sf(cflags)
    }
    # The test bench opens tb_data/ relative to where it runs; -tb copies the folder there.
    add_files -tb $sf(tb_data)
    open_solution -reset $sf(solution) -flow_target vivado
    set_part $sf(part)
    create_clock -period $sf(clock_period_ns) -name default
}

sf_step csim {
    csim_design
}

sf_step csynth {
    csynth_design
}

if {$sf(cosim)} {
    sf_step cosim {
        cosim_design
    }
}

sf_step export {
    export_design -format ip_catalog \
        -vendor $sf(vendor) -library $sf(library) -version $sf(ip_version) -ipname $sf(top) \
        -display_name $sf(display_name) -description $sf(description)
}

sf_done
