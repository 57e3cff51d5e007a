// ${layer}: its configurable multipliers bound to ${impl} (the hardware plan); hls4ml's ${config} unchanged.
struct ${config}_${impl} : ${config} {
    struct mult_config : ${config}::mult_config {
        template <class x_T, class y_T> using product = nnet::product::mult_${impl}<x_T, y_T>;
    };
};
// ---- flat ----
// ${layer}: its configurable multipliers bound to ${impl} (the hardware plan); hls4ml's ${config} unchanged.
struct ${config}_${impl} : ${config} {
    template <class x_T, class y_T> using product = nnet::product::mult_${impl}<x_T, y_T>;
};
