// The AXI4-Stream word the IP exchanges with the AXI DMA: 32 data bits and TLAST.
//
// Under Vitis HLS this is ap_axiu<32,0,0,0> from AMD's ap_axi_sdata.h, which maps the `last`
// member to TLAST. hls4ml's bundled ap_types do not include that header, so a plain g++ C
// simulation uses a struct with the same members; the IP's code touches only `data`, `keep`,
// `strb` and `last`, which both provide.

#ifndef SEMIFREDDO_AXIS_H_
#define SEMIFREDDO_AXIS_H_

#include "ap_int.h"

#if defined(__SYNTHESIS__) || defined(__VITIS_HLS__) || __has_include("ap_axi_sdata.h")
#include "ap_axi_sdata.h"
typedef ap_axiu<32, 0, 0, 0> axis_word_t;
#else
struct axis_word_t {
    ap_uint<32> data;
    ap_uint<4> keep;
    ap_uint<4> strb;
    ap_uint<1> last;
};
#endif

#endif
