// SemifreddoNet layers for hls4ml's io_stream dataflow (registered as an hls4ml custom source).
//
//   alpha_blend          out = t + alpha * (f - t) per channel, f a frozen-core channel, t the
//                        core's own channel (or, with the core-shuffle switch on, the other core's)
//   repeat_gate          passes the new feature map when repeat >= index, the previous one otherwise
//                        (repeat.hardware: unrolled, one pipeline stage per run)
//   repeat_source/sink/copy
//                        the reused repeat group's frame buffer (repeat.hardware: reuse; see
//                        hls_project/repeat_stage.py): a pass reads the entry stream or the
//                        buffer, and writes the exit stream or the buffer
//   frame_pack/unpack    a pixel of every group stream in one word of a frame buffer in DDR
//
// The blend is computed exactly in CONFIG_T::accum_t (sized by the converter so that no bit is lost)
// and rounded once, when it is assigned to the result type (AP_RND_CONV, AP_SAT), which is what the
// QKeras quantizer does. Both streams of a gate are always consumed, so the dataflow never stalls
// whatever the repeat count.

#ifndef NNET_SEMIFREDDO_H_
#define NNET_SEMIFREDDO_H_

#include "ap_int.h"
#include "hls_stream.h"
#include "nnet_common.h"
#include "nnet_mult.h"

namespace nnet {

namespace product {

// hls4ml's plain product with the multiplier bound to DSP48 slices or to LUTs (fabric): the
// converter picks one per layer by the spec's multiplier policy (hardware.multipliers).
template <class x_T, class w_T> class mult_dsp : public Product {
  public:
    static auto product(x_T a, w_T w) -> decltype(a * w) {
        #pragma HLS INLINE
        decltype(a * w) p = a * w;
        #pragma HLS BIND_OP variable=p op=mul impl=dsp
        return p;
    }
};

template <class x_T, class w_T> class mult_lut : public Product {
  public:
    static auto product(x_T a, w_T w) -> decltype(a * w) {
        #pragma HLS INLINE
        decltype(a * w) p = a * w;
        #pragma HLS BIND_OP variable=p op=mul impl=fabric
        return p;
    }
};

} // namespace product

struct alpha_blend_config {
    static const unsigned n_pixels = 1;      // pixels per frame
    static const unsigned n_chan = 1;        // channels of the trainable core
    static const unsigned n_frozen = 1;      // channels of the frozen core
    static const unsigned frozen_offset = 0; // channel j blends with frozen channel (offset + j) % n_frozen
    typedef ap_ufixed<9, 1> alpha_t;
    typedef ap_fixed<18, 4> accum_t;
    template <class x_T, class y_T> using product = nnet::product::mult<x_T, y_T>;
};

template <class frozen_T, class own_T, class res_T, typename CONFIG_T>
typename res_T::value_type blend_one(typename frozen_T::value_type f, typename own_T::value_type t,
                                      typename CONFIG_T::alpha_t alpha) {
    #pragma HLS INLINE
    typename CONFIG_T::accum_t frozen_value = f;
    typename CONFIG_T::accum_t own_value = t;
    typename CONFIG_T::accum_t difference = frozen_value - own_value;
    typename CONFIG_T::accum_t blended =
        own_value + CONFIG_T::template product<typename CONFIG_T::alpha_t, typename CONFIG_T::accum_t>::product(
                        alpha, difference);
    return typename res_T::value_type(blended);
}

// One pixel: each of the core's own channels blended with its frozen partner channel.
template <class frozen_T, class own_T, class res_T, typename CONFIG_T>
res_T blend_pixel(const frozen_T &f, const own_T &t, const typename CONFIG_T::alpha_t alpha[CONFIG_T::n_chan]) {
    #pragma HLS INLINE
    res_T out;
    PRAGMA_DATA_PACK(out)
BlendChannels:
    for (unsigned j = 0; j < CONFIG_T::n_chan; j++) {
        #pragma HLS UNROLL
        out[j] = blend_one<frozen_T, own_T, res_T, CONFIG_T>(
            f[(CONFIG_T::frozen_offset + j) % CONFIG_T::n_frozen], t[j], alpha[j]);
    }
    return out;
}

template <class frozen_T, class own_T, class res_T, typename CONFIG_T>
void alpha_blend(hls::stream<frozen_T> &frozen, hls::stream<own_T> &own, hls::stream<res_T> &res,
                 const typename CONFIG_T::alpha_t alpha[CONFIG_T::n_chan]) {
BlendPixels:
    for (unsigned p = 0; p < CONFIG_T::n_pixels; p++) {
        #pragma HLS PIPELINE
        frozen_T f = frozen.read();
        own_T t = own.read();
        res.write(blend_pixel<frozen_T, own_T, res_T, CONFIG_T>(f, t, alpha));
    }
}

// Core shuffle: with swap set, a core blends the other core's features instead of its own.
template <class frozen_T, class own_T, class res_T, typename CONFIG_T>
void alpha_blend_shuffle(hls::stream<frozen_T> &frozen, hls::stream<own_T> &own, hls::stream<own_T> &other,
                         hls::stream<res_T> &res, const typename CONFIG_T::alpha_t alpha[CONFIG_T::n_chan],
                         const ap_uint<1> swap) {
BlendPixels:
    for (unsigned p = 0; p < CONFIG_T::n_pixels; p++) {
        #pragma HLS PIPELINE
        frozen_T f = frozen.read();
        own_T t = own.read();
        own_T o = other.read();
        res.write(blend_pixel<frozen_T, own_T, res_T, CONFIG_T>(f, swap ? o : t, alpha));
    }
}

struct repeat_gate_config {
    static const unsigned n_elements = 1;    // stream elements per frame
    static const unsigned index = 2;         // this gate belongs to the index-th run of the last block
};

template <class prev_T, class new_T, class res_T, typename CONFIG_T>
void repeat_gate(hls::stream<prev_T> &previous, hls::stream<new_T> &next, hls::stream<res_T> &res,
                 const ap_uint<32> repeat) {
    const bool take_new = repeat >= CONFIG_T::index;
GatePixels:
    for (unsigned p = 0; p < CONFIG_T::n_elements; p++) {
        #pragma HLS PIPELINE
        prev_T a = previous.read();
        new_T b = next.read();
        res_T out;
        PRAGMA_DATA_PACK(out)
    GateChannels:
        for (unsigned j = 0; j < res_T::size; j++) {
            #pragma HLS UNROLL
            out[j] = take_new ? typename res_T::value_type(b[j]) : typename res_T::value_type(a[j]);
        }
        res.write(out);
    }
}

// ---- the reused repeat group's frame buffer ---------------------------------------------------

// Element-wise copy between two stream element types of the same shape (their typedefs may differ).
template <class from_T, class to_T>
to_T repeat_element(const from_T &from) {
    #pragma HLS INLINE
    to_T to;
    PRAGMA_DATA_PACK(to)
RepeatChannels:
    for (unsigned c = 0; c < to_T::size; c++) {
        #pragma HLS UNROLL
        to[c] = from[c];
    }
    return to;
}

// One pass's input: the entry stream on the first pass, the frame buffer after.
template <class data_T, unsigned N>
void repeat_source(hls::stream<data_T> &entry, const data_T frame[N], hls::stream<data_T> &src, bool first) {
RepeatSource:
    for (unsigned p = 0; p < N; p++) {
        #pragma HLS PIPELINE
        src.write(first ? entry.read() : frame[p]);
    }
}

// One pass's output: the exit stream on the last pass, the frame buffer before.
template <class data_T, unsigned N>
void repeat_sink(hls::stream<data_T> &dst, hls::stream<data_T> &exit, data_T frame[N], bool last) {
RepeatSink:
    for (unsigned p = 0; p < N; p++) {
        #pragma HLS PIPELINE
        data_T value = dst.read();
        if (last) {
            exit.write(value);
        } else {
            frame[p] = value;
        }
    }
}

// ---- a frame buffer in DDR (repeat.buffer: ddr): one AXI master word a pixel -----------------
// Every group stream's element for one pixel, packed side by side from bit LSB upwards, each
// channel's raw bits at its type's width.

template <class data_T> struct frame_bits {
    static const unsigned value = data_T::size * data_T::value_type::width;
};

template <class data_T, unsigned LSB, class word_T>
data_T frame_unpack(const word_T &word) {
    #pragma HLS INLINE
    const unsigned W = data_T::value_type::width;
    data_T value;
    PRAGMA_DATA_PACK(value)
FrameUnpack:
    for (unsigned c = 0; c < data_T::size; c++) {
        #pragma HLS UNROLL
        value[c].range(W - 1, 0) = word.range(LSB + W * c + W - 1, LSB + W * c);
    }
    return value;
}

template <class data_T, unsigned LSB, class word_T>
void frame_pack(const data_T &value, word_T &word) {
    #pragma HLS INLINE
    const unsigned W = data_T::value_type::width;
FramePack:
    for (unsigned c = 0; c < data_T::size; c++) {
        #pragma HLS UNROLL
        word.range(LSB + W * c + W - 1, LSB + W * c) = value[c].range(W - 1, 0);
    }
}

// Between passes: the output half of the frame buffer becomes the next pass's input.
template <class from_T, class to_T, unsigned N>
void repeat_copy(const from_T from[N], to_T to[N]) {
RepeatCopy:
    for (unsigned p = 0; p < N; p++) {
        #pragma HLS PIPELINE
        to[p] = repeat_element<from_T, to_T>(from[p]);
    }
}

} // namespace nnet

#endif
