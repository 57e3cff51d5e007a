# --- shared helpers (board_scripts/tcl/steps.tcl) ------------------------------------------------
# The Python runner (semifreddo.board_scripts.tools) reads these markers from the tool's output:
#   SEMIFREDDO-STEP <name>            a step starts
#   SEMIFREDDO-FAILED <name>: <why>   the step failed; the script exits 1
#   SEMIFREDDO-WARNING <text>         something to tell the user, the build goes on
#   SEMIFREDDO-DONE                   every step finished
# A failing tool command raises a Tcl error, which sf_step turns into a named, one-line failure.

proc sf_step {name body} {
    puts "SEMIFREDDO-STEP $name"
    flush stdout
    if {[catch {uplevel 1 $body} message]} {
        puts "SEMIFREDDO-FAILED $name: [string map [list "\n" " "] $message]"
        flush stdout
        exit 1
    }
}

proc sf_done {} {
    puts "SEMIFREDDO-DONE"
    flush stdout
    exit 0
}
