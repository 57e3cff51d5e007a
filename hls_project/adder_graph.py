"""Frozen layers as adder graphs: hls4ml's ``distributed_arithmetic`` strategy, solved by da4ml.

da4ml turns a constant matrix-vector product ``x @ kernel + bias`` into one graph of shift-and-add
operations shared by all output channels (a :class:`da4ml.cmvm.types.CombLogic`). Solving it takes
seconds to minutes, so every solution is cached on disk, keyed by everything it depends on: the
kernel and bias values, the input's fixed-point format (k, i, f per input), the solver options and
the da4ml version. A cached graph is a JSON file (da4ml's own ``CombLogic.save``/``load``); the C++
is regenerated from it in milliseconds.

Only public da4ml API is used: ``FixedVariableArray.from_kif``, ``comb_trace``, ``CombLogic``
and ``hls_logic_and_bridge_gen``. Nothing here imports hls4ml or da4ml at module level (the
backend plugin loads while hls4ml itself is still loading).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# hls4ml 1.3's own DA pass uses hard_dc=2 (its DA_HARD_DC: at most 2 adder levels beyond the minimum
# depth) and search_all_decompose_dc=True, which solves once per decomposition depth and keeps the
# cheapest. Measured on trained digits/po2 cores: for 9-input layers the search saves 7-9 % of the
# cost in about a second; for 144- and 400-input layers it saved 0-0.3 % in 2.3x and 3.6x the time
# (b2: 8 s vs 4 s, 91 s vs 25 s). So it searches only small layers.
SEARCH_ALL_BELOW_INPUTS = 64


def solver_options(n_in: int) -> dict:
    return {"hard_dc": 2, "search_all_decompose_dc": n_in < SEARCH_ALL_BELOW_INPUTS}


HW_CONFIG = (1, -1, -1)          # da4ml HWConfig(adder_size, carry_size, latency_cutoff)
CACHE_FORMAT = 1


@dataclass
class Job:
    """One constant matrix-vector product to build: ``x @ kernel + bias`` for inputs of format k, i, f."""

    name: str                     # layer name, for messages
    kernel: np.ndarray            # (n_in, n_out)
    bias: np.ndarray | None       # (n_out,)
    k: np.ndarray                 # per input: signed (1) or not (0)
    i: np.ndarray                 # per input: integer bits (without the sign)
    f: np.ndarray                 # per input: fractional bits

    @property
    def key(self) -> str:
        import da4ml

        digest = hashlib.sha256(json.dumps({"format": CACHE_FORMAT, "da4ml": da4ml.__version__,
                                            "options": solver_options(len(self.k)), "hw": HW_CONFIG,
                                            "shape": list(self.kernel.shape)}, sort_keys=True).encode())
        for array in (self.kernel, np.zeros(0) if self.bias is None else self.bias):
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        for array in (self.k, self.i, self.f):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        return digest.hexdigest()[:24]


def solve(job: Job):
    """da4ml's adder graph for ``job`` (a CombLogic)."""
    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace

    options = solver_options(len(job.k))
    inp = FixedVariableArray.from_kif(job.k, job.i, job.f, HWConfig(*HW_CONFIG), solver_options=options)
    out = inp @ job.kernel
    if job.bias is not None:
        out = out + job.bias
    return comb_trace(inp, out)


class GraphCache:
    """Solved graphs as ``<key>.json`` in ``folder`` (None: no cache, solve every time); ``write=False``
    reads it but never adds to it."""

    def __init__(self, folder: str | os.PathLike | None, write: bool = True):
        self.folder = Path(folder) if folder else None
        self.write = write

    def load(self, key: str):
        from da4ml.cmvm.types import CombLogic

        path = self.folder / f"{key}.json" if self.folder else None
        if path is None or not path.exists():
            return None
        try:
            return CombLogic.load(path)
        except (ValueError, KeyError, TypeError, AssertionError):
            return None                 # a damaged entry is solved again and overwritten

    def save(self, key: str, comb, meta: dict) -> None:
        if self.folder is None or not self.write:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.{os.getpid()}.tmp"
        comb.save(tmp)
        os.replace(tmp, self.folder / f"{key}.json")
        (self.folder / f"{key}.meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def build_graphs(jobs: list[Job], cache: GraphCache, progress: bool = True) -> dict[str, object]:
    """Every job's graph, from the cache or solved now (one progress bar over the solves).
    Jobs with the same key (repeat copies of a layer) are solved once and share one CombLogic object.
    Returns name -> CombLogic."""
    from tqdm.auto import tqdm

    keys = {job.name: job.key for job in jobs}
    graphs: dict[str, object] = {}
    for key in set(keys.values()):
        comb = cache.load(key)
        if comb is not None:
            graphs[key] = comb
    todo = {}
    for job in jobs:
        if keys[job.name] not in graphs:
            todo.setdefault(keys[job.name], job)
    if todo:
        bar = tqdm(total=len(todo), desc="solving adder graphs (first time only)", unit="layer", file=sys.stderr,
                   disable=not progress, dynamic_ncols=True)
        for key, job in todo.items():
            bar.set_postfix_str(f"{job.name} {job.kernel.shape[0]}x{job.kernel.shape[1]}")
            start = time.perf_counter()
            comb = solve(job)
            seconds = time.perf_counter() - start
            cache.save(key, comb, {"layer": job.name, "shape": list(job.kernel.shape), "cost": comb.cost,
                                   "latency": comb.latency[1], "solve_seconds": round(seconds, 2)})
            graphs[key] = comb
            bar.update(1)
            if progress:
                bar.write(f"adder graph {job.name}: {job.kernel.shape[0]}x{job.kernel.shape[1]}, da4ml cost "
                          f"{comb.cost:.0f}, solved in {seconds:.1f} s", file=sys.stderr)
        bar.close()
    return {name: graphs[key] for name, key in keys.items()}


def hls_function(comb, fn_name: str) -> str:
    """The C++ of one graph as hls4ml's DA templates call it: ``fn_name<inp_t, out_t>(inp, out)``.

    The body Vitis HLS synthesizes is da4ml's, unchanged: one ``ap_fixed`` type per value. The C
    simulation (no ``__SYNTHESIS__``) computes the same values as integer codes in ``long long``
    (:func:`csim_body`): the same bits, but g++ compiles and runs it several times faster, since
    it instantiates no ``ap_fixed`` arithmetic per value. ``-DSEMIFREDDO_DA_APFIXED`` compiles
    da4ml's body in C simulation too (``tests/test_adder_graph_csim.py`` compares the two).
    """
    from da4ml.codegen.hls import hls_logic_and_bridge_gen

    code, _ = hls_logic_and_bridge_gen(comb, fn_name, "vitis", pragmas=["#pragma HLS INLINE"], print_latency=True)
    body = csim_body(comb)
    if body is None:
        return code             # an operation csim_body does not model: da4ml's body everywhere
    head, pragma, rest = code.partition("#pragma HLS INLINE\n")
    synthesized, close, tail = rest.rpartition("}")
    return (CSIM_HELPERS + head + pragma + "#if defined(__SYNTHESIS__) || defined(SEMIFREDDO_DA_APFIXED)\n"
            + synthesized + "#else\n" + "".join(f"    {line}\n" for line in body) + "#endif\n" + close + tail)


# Integer codes for the C simulation. ``sf_da_in`` converts an input as assigning it to
# ap_fixed<W, W - F> (or ap_ufixed) would: truncate to F fraction bits (towards minus infinity), wrap
# to W bits. ``sf_da_out`` makes the value of type T whose bits are ``code``.
CSIM_HELPERS = """
#if !defined(__SYNTHESIS__) && !defined(SEMIFREDDO_DA_CSIM_HELPERS)
#define SEMIFREDDO_DA_CSIM_HELPERS
template <int W, bool S> inline long long sf_da_wrap(long long c) {
    return S ? (long long)((unsigned long long)c << (64 - W)) >> (64 - W)
             : (long long)((unsigned long long)c & (~0ULL >> (64 - W)));
}
template <int F, int W, bool S, int XW, int XI, bool XS, ap_q_mode XQ, ap_o_mode XO, int XN>
inline long long sf_da_in(const ap_fixed_base<XW, XI, XS, XQ, XO, XN> &x) {
    static_assert(XW <= 64, "an adder graph input wider than 64 bits");
    long long c = sf_da_wrap<XW, XS>((long long)x.bits_to_uint64());
    constexpr int shift = (XW - XI) - F;
    if (shift > 0) c >>= (shift > 0 ? shift : 0);
    if (shift < 0) c *= (1LL << (shift < 0 ? -shift : 0));
    return sf_da_wrap<W, S>(c);
}
template <class T> inline T sf_da_out(long long code) {
    T t;
    t.setBits((ap_ulong)code);
    return t;
}
#endif

"""


def _vitis_format(kif) -> tuple[bool, int, int]:
    """(signed, width, fraction bits) of the type da4ml's Vitis code declares for ``kif``
    (``kif_to_vitis_type``: k = i = f = 0 becomes ap_ufixed<1,0>)."""
    k, i, f = (int(v) for v in kif)
    if k == i == f == 0:
        f = 1
    return bool(k), k + i + f, f


def _code_range(signed: bool, width: int) -> tuple[int, int]:
    return (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)


def csim_body(comb) -> list[str] | None:
    """da4ml's graph as C++ on integer codes (``long long``), bit for bit what its ``ap_fixed`` code
    computes; None if the graph uses an operation not modelled here (or a value would not fit).

    Every value ``v<i>`` is the integer code of da4ml's declared type for it (fraction bits F):
    sums are exact once both operands are scaled to the finer of their grids, assignment truncates
    to F bits (an arithmetic right shift: towards minus infinity, ap_fixed's AP_TRN) and wraps to the
    type's width (AP_WRAP). The wrap is written only where the exact result can leave the type's
    range, which is bounded here from the operands' own ranges (the C++ semantics, not da4ml's
    interval claims), so leaving it out elsewhere changes nothing.
    """
    from fractions import Fraction

    from da4ml.cmvm.types import QInterval, _minimal_kif
    from da4ml.trace.fixed_variable import _const_f

    limit = 1 << 62
    ops = comb.ops
    refs = comb.ref_count
    fmt: dict[int, tuple[bool, int, int]] = {}      # op -> (signed, width, fraction bits)
    rng: dict[int, tuple[int, int]] = {}            # op -> (lowest, highest) code it can hold
    lines: list[str] = []

    def scaled(name: str, factor: int) -> str:
        return name if factor == 1 else f"{name} * {factor}LL"

    def assign(i: int, expr: str, lo: int, hi: int, frac: int) -> bool:
        """``v<i> = expr``: an exact code in [lo, hi] at ``frac`` fraction bits, stored in op i's type."""
        signed, width, f = fmt[i]
        if max(abs(lo), abs(hi)) >= limit or width > 62:
            return False
        if frac > f:
            expr, lo, hi = f"({expr}) >> {frac - f}", lo >> (frac - f), hi >> (frac - f)
        elif frac < f:
            factor = 1 << (f - frac)
            expr, lo, hi = f"({expr}) * {factor}LL", lo * factor, hi * factor
            if max(abs(lo), abs(hi)) >= limit:
                return False
        tlo, thi = _code_range(signed, width)
        if lo < tlo or hi > thi:
            expr, lo, hi = f"sf_da_wrap<{width}, {int(signed)}>({expr})", tlo, thi
        lines.append(f"const long long v{i} = {expr};")
        rng[i] = (lo, hi)
        return True

    def constant(value: Fraction, signed: bool, width: int, f: int) -> int:
        """The code a double constant gets in ap_(u)fixed<width, width - f>: truncated, wrapped."""
        code = (value * Fraction(2) ** f).__floor__()
        code &= (1 << width) - 1
        return code - (1 << width) if signed and code >> (width - 1) else code

    for i, op in enumerate(ops):
        if refs[i] == 0:
            continue
        fmt[i] = _vitis_format(_minimal_kif(op.qint))
        signed, width, f = fmt[i]
        if op.opcode == -1:
            if width > 62:
                return None
            lines.append(f"const long long v{i} = sf_da_in<{f}, {width}, {int(signed)}>(model_inp[{op.id0}]);")
            rng[i] = _code_range(signed, width)
            continue
        if op.opcode in (0, 1):
            fa, fb = fmt[op.id0][2], fmt[op.id1][2] - op.data       # bit_shift<s> moves the point only
            frac = max(fa, fb)
            ka, kb = 1 << (frac - fa), 1 << (frac - fb)
            (alo, ahi), (blo, bhi) = rng[op.id0], rng[op.id1]
            if max(abs(alo), abs(ahi)) * ka >= limit or max(abs(blo), abs(bhi)) * kb >= limit:
                return None
            if op.opcode == 0:
                lo, hi, sign = alo * ka + blo * kb, ahi * ka + bhi * kb, "+"
            else:
                lo, hi, sign = alo * ka - bhi * kb, ahi * ka - blo * kb, "-"
            ok = assign(i, f"{scaled(f'v{op.id0}', ka)} {sign} {scaled(f'v{op.id1}', kb)}", lo, hi, frac)
        elif op.opcode in (3, -3):
            lo, hi = rng[op.id0]
            if op.opcode == -3:
                lo, hi = -hi, -lo
            ok = assign(i, f"{'-' if op.opcode == -3 else ''}v{op.id0}", lo, hi, fmt[op.id0][2])
        elif op.opcode == 4:
            number = op.data * op.qint.step
            mag = abs(number)
            cf = _const_f(mag)
            cs, cw, cfrac = _vitis_format(_minimal_kif(QInterval(mag, mag, 2.0 ** -cf)))
            code = constant(Fraction(mag), cs, cw, cfrac)
            if number < 0:
                code = -code
            fa = fmt[op.id0][2]
            frac = max(fa, cfrac)
            ka, kc = 1 << (frac - fa), 1 << (frac - cfrac)
            lo, hi = rng[op.id0]
            ok = assign(i, f"{scaled(f'v{op.id0}', ka)} + ({code * kc}LL)", lo * ka + code * kc,
                        hi * ka + code * kc, frac)
        elif op.opcode == 5:
            code = constant(Fraction(float(op.data * op.qint.step)), signed, width, f)
            ok = assign(i, f"{code}LL", code, code, f)
        else:
            return None
        if not ok:
            return None
    for n, idx in enumerate(comb.out_idxs):
        if idx < 0:
            lines.append(f"model_out[{n}] = 0;")
            continue
        signed, width, f = _vitis_format(_minimal_kif(comb.out_qint[n]))
        if width > 62:
            return None
        frac = fmt[idx][2] - comb.out_shifts[n]
        expr = f"-v{idx}" if comb.out_negs[n] else f"v{idx}"
        if frac > f:
            expr = f"({expr}) >> {frac - f}"
        elif frac < f:
            expr = f"({expr}) * {1 << (f - frac)}LL"
            if max(map(abs, rng[idx])) << (f - frac) >= limit:
                return None
        kind = f"ap_{'' if signed else 'u'}fixed<{width},{width - f}>"
        lines.append(f"model_out[{n}] = sf_da_out<{kind}>(sf_da_wrap<{width}, {int(signed)}>({expr}));")
    return lines


# --------------------------------------------------------------------------------------------
# Cost (for the estimator) and Verilog (for validating it with Yosys)
# --------------------------------------------------------------------------------------------

# Adder levels per pipeline stage, as datapath.LEVELS_PER_STAGE (three 7-series carry chains fit a
# 100 MHz clock). da4ml's latency unit with HW_CONFIG is one adder level.
LEVELS_PER_STAGE = 3


def layer_job(name: str, kernel_codes, bias_codes, in_fmt, w_fmt, b_fmt) -> Job:
    """The job hls4ml's conversion produces for a conv/dense with these integer codes and formats
    (``semifreddo.models.fixedpoint.Fixed``): same values and input formats, so the same cache key."""
    kernel = np.asarray(kernel_codes, dtype=np.float64) * 2.0 ** -w_fmt.frac
    kernel = kernel.reshape(-1, kernel.shape[-1])
    bias = None if bias_codes is None else np.asarray(bias_codes, dtype=np.float64).ravel() * 2.0 ** -b_fmt.frac
    n_in = kernel.shape[0]
    return Job(name, kernel, bias, np.full(n_in, int(in_fmt.signed)), np.full(n_in, in_fmt.integer),
               np.full(n_in, in_fmt.frac))


@dataclass(frozen=True)
class GraphCost:
    adders: int          # two-input adders/subtractors in the graph (shared between channels)
    lut: float           # da4ml's cost: with HW_CONFIG, the adders' live bits, one LUT each on 7-series
    ff: int              # pipeline registers: input, every stage boundary, output
    input_ff: int        # of which the input register (the estimator prices a conv's window apart)
    stages: int          # clock cycles from input register to output register


def graph_cost(comb, levels_per_stage: int = LEVELS_PER_STAGE) -> GraphCost:
    from da4ml.cmvm.types import _minimal_kif     # the bits of an interval, as da4ml's reg_bits counts them
    from da4ml.trace import to_pipeline

    used = comb.ref_count
    adders = sum(1 for op, n in zip(comb.ops, used) if n and op.opcode in (0, 1, 4))
    pipe = to_pipeline(comb, levels_per_stage, verbose=False)
    input_ff = int(sum(sum(kif) for kif in map(_minimal_kif, comb.inp_qint)))
    return GraphCost(adders, comb.cost, int(pipe.reg_bits), input_ff, len(pipe.solutions))


def adder_graph_cost(kernel_codes, bias_codes, in_fmt, w_fmt, b_fmt, cache: GraphCache | None = None,
                     levels_per_stage: int = LEVELS_PER_STAGE) -> GraphCost:
    """What one frozen layer costs as an adder graph: solved (or read from ``cache``) and counted."""
    job = layer_job("layer", kernel_codes, bias_codes, in_fmt, w_fmt, b_fmt)
    cache = cache or GraphCache(None)
    return graph_cost(build_graphs([job], cache, progress=False)["layer"], levels_per_stage)


def graph_verilog(comb, name: str = "top", levels_per_stage: int = LEVELS_PER_STAGE) -> str:
    """da4ml's pipelined Verilog for ``comb`` (module ``name``, ports clk, model_inp, model_out), one
    text with its library modules, as :func:`semifreddo.hls_project.estimate.yosys.synthesize` takes it."""
    import tempfile

    from da4ml.codegen import VerilogModel

    with tempfile.TemporaryDirectory(prefix="semifreddo-da4ml-") as tmp:
        VerilogModel(comb, name, tmp, latency_cutoff=levels_per_stage, print_latency=False).write()
        src = Path(tmp) / "src"
        design = "\n".join(p.read_text() for p in sorted(src.glob("*.v")) if p.stem != f"{name}_wrapper")
        # da4ml's whole library (shift_adder, negative, ...): Yosys reads it deferred and elaborates
        # only the modules the top instantiates (estimate/yosys.py).
        library = [p.read_text() for p in sorted((src / "static").glob("*.v"))]
        return "\n".join([design, *library])
