"""The arithmetic of one output channel of a layer, as the generated hardware builds it.

A dot product ``sum_i w_i * x_i + bias`` becomes a balanced tree of two-input adders, exactly
sized, in the order hls4ml unrolls it (Vitis HLS balances unrolled integer add chains):

* a **constant** weight (frozen core) is its canonical signed digits: ``w * x`` is the sum of
  ``+-(x << s)`` terms, so a zero weight adds nothing and a power of two is only wiring;
* a **configurable** weight (register) feeds a real ``x_bits x w_bits`` multiplier;
* the bias is one more operand at the root.

Each adder's width comes from the exact value range of its operands (interval arithmetic on the
actual constants), and low bits that are known zero in one operand pass through without logic.
Negation is pushed up the tree (``-a - b`` becomes ``-(a + b)``), so signs cost nothing except
where a negative sum has to be produced outright.

Pipelining, as Vitis HLS schedules an II=1 loop at 100 MHz: a configurable multiplier takes a
stage of its own; after that, :data:`LEVELS_PER_STAGE` adder levels share one clock period, every
signal that crosses a stage boundary is registered (operands that arrive early are delayed to
match), and the sum ends in an output register. Constants and configurable registers are static
during a frame and are never delayed.

The same :class:`Tree` serves two purposes and so keeps them in step: :func:`tree_cost` counts
what the estimator prices with the unit-cost tables, and :func:`tree_verilog` writes the Verilog
that validation synthesizes with Yosys.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .csd import csd_terms

# Adder levels in one clock period: a 7-series carry chain of 16-24 bits plus routing takes about
# 2-2.5 ns, so three of them fit the 8.75 ns Vitis HLS schedules into a 10 ns (100 MHz) period.
LEVELS_PER_STAGE = 3


def signed_width(lo: int, hi: int) -> int:
    """Bits of the narrowest two's-complement signal holding every value in [lo, hi]."""
    def bits(v: int) -> int:
        return (v if v >= 0 else -v - 1).bit_length() + 1
    return max(bits(lo), bits(hi))


def _trailing_zeros(value: int) -> int:
    return (value & -value).bit_length() - 1 if value else 64


@dataclass
class Node:
    """A signal in the tree. Its value is ``sign * signal``; ``signal`` lies in [lo, hi]."""

    kind: str                 # "shift" (x_i << s), "product" (x_i * w_i), "const", "add", "sub"
    lo: int
    hi: int
    tz: int                   # low bits known to be zero
    sign: int = 1
    index: int = 0            # input (and weight) index of a leaf
    shift: int = 0
    value: int = 0            # the constant of a "const" leaf
    children: tuple = ()
    level: int = 0            # adder levels below this node
    ready: int | None = None  # pipeline stage from which the value is available (None: static)
    registered: bool = False  # the node's output goes through a pipeline register
    delays: tuple = ()        # per child: registers inserted to align it with this node's stage

    @functools.cached_property
    def width(self) -> int:
        return signed_width(self.lo, self.hi)


@dataclass
class Tree:
    """One output channel's sum. ``root`` may be None (every weight zero and no bias)."""

    root: Node | None
    n_inputs: int
    x_bits: int                           # unsigned input codes
    w_bits: int = 0                       # configurable weights (0: constant weights)
    adders: list[Node] = field(default_factory=list)
    products: list[Node] = field(default_factory=list)


def _combine(a: Node, b: Node) -> Node:
    """``a + b`` with signs pushed up: the hardware computes an add or a subtract of the signals."""
    if a.sign == b.sign:
        kind, lo, hi, sign = "add", a.lo + b.lo, a.hi + b.hi, a.sign
        children = (a, b)
    else:
        plus, minus = (a, b) if a.sign > 0 else (b, a)
        kind, lo, hi, sign = "sub", plus.lo - minus.hi, plus.hi - minus.lo, 1
        children = (plus, minus)
    return Node(kind, lo, hi, min(a.tz, b.tz), sign, children=children, level=max(a.level, b.level) + 1)


def _balanced(nodes: list[Node], adders: list[Node]) -> Node | None:
    while len(nodes) > 1:
        paired = []
        for i in range(0, len(nodes) - 1, 2):
            paired.append(_combine(nodes[i], nodes[i + 1]))
            adders.append(paired[-1])
        if len(nodes) % 2:
            paired.append(nodes[-1])
        nodes = paired
    return nodes[0] if nodes else None


def _finish(tree: Tree, operands: list[Node], bias: Node | None) -> Tree:
    root = _balanced(operands, tree.adders)
    if bias is not None:
        root = bias if root is None else _combine(root, bias)
        if root is not bias:
            tree.adders.append(root)
    if root is not None and root.sign < 0:
        # A negative sum that nothing else absorbs: produce it with one subtractor from zero.
        zero = Node("const", 0, 0, 64)
        root = _combine(zero, root)
        tree.adders.append(root)
    tree.root = root
    _schedule(tree)
    return tree


def _schedule(tree: Tree) -> None:
    """Place pipeline registers (see the module notes)."""
    base = 1 if tree.products else 0

    def visit(node: Node) -> None:
        if not node.children:
            node.ready = {"shift": 0, "product": base}.get(node.kind)
            return
        for child in node.children:
            visit(child)
        stage = base + (node.level - 1) // LEVELS_PER_STAGE
        node.delays = tuple(0 if c.ready is None else stage - c.ready for c in node.children)
        node.registered = node is tree.root or node.level % LEVELS_PER_STAGE == 0
        node.ready = stage + 1 if node.registered else stage

    root = tree.root
    if root is not None:
        visit(root)
        if root.kind == "shift":          # a lone input term still goes through the output register
            root.registered, root.ready = True, root.ready + 1


def constant_dot_product(x_bits: int, weights, bias: int = 0, weight_shift: int = 0, bias_shift: int = 0) -> Tree:
    """``sum_i weights[i] * x_i + bias`` with constant integer ``weights`` and unsigned ``x_bits``
    inputs, in accumulator LSBs (products shifted left by ``weight_shift``, the bias by ``bias_shift``)."""
    weights = [int(w) for w in np.asarray(weights).ravel()]
    x_max = (1 << x_bits) - 1
    tree = Tree(None, len(weights), x_bits)
    products = []
    for i, w in enumerate(weights):
        terms = [Node("shift", 0, x_max << (s + weight_shift), s + weight_shift, sign, index=i, shift=s + weight_shift)
                 for s, sign in csd_terms(w)]
        product = _balanced(terms, tree.adders)
        if product is not None:
            products.append(product)
    bias_node = None
    if bias:
        value = int(bias) << bias_shift
        bias_node = Node("const", abs(value), abs(value), _trailing_zeros(abs(value)), 1 if value > 0 else -1,
                         value=abs(value))
    return _finish(tree, products, bias_node)


def configurable_dot_product(x_bits: int, w_bits: int, n_inputs: int, bias_bits: int = 0,
                             weight_shift: int = 0, bias_shift: int = 0) -> Tree:
    """``sum_i w_i * x_i + b`` with ``w_bits`` signed weights and a ``bias_bits`` signed bias held
    in registers (``bias_bits=0``: no bias); one real multiplier per input."""
    x_max = (1 << x_bits) - 1
    w_lo, w_hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    tree = Tree(None, n_inputs, x_bits, w_bits)
    for i in range(n_inputs):
        tree.products.append(Node("product", (x_max * w_lo) << weight_shift, (x_max * w_hi) << weight_shift,
                                  weight_shift, index=i, shift=weight_shift))
    bias_node = None
    if bias_bits:
        bias_node = Node("bias", -(1 << (bias_bits - 1)) << bias_shift, ((1 << (bias_bits - 1)) - 1) << bias_shift,
                         bias_shift, shift=bias_shift)
    return _finish(tree, list(tree.products), bias_node)


# --------------------------------------------------------------------------------------------
# What the tree costs (priced by the unit tables in costs.py)
# --------------------------------------------------------------------------------------------

def _active_bits(operand: Node, result_width: int) -> tuple[int, int]:
    """The bit positions [low, high) where an operand of an adder is not a known constant: above
    its known-zero low bits, up to its magnitude (non-negative) or all the way up (its sign
    extension, when it can be negative; the result's top bit comes from the carry chain)."""
    high = operand.hi.bit_length() if operand.lo >= 0 else result_width - 1
    return operand.tz, high


def adder_bits(node: Node) -> int:
    """Bits of carry-chain logic (one LUT each on 7-series) an adder or subtractor needs.

    ``a + b`` needs logic only where both operands have live bits; elsewhere the sum bit is the
    one live bit, rippled through the carry chain. ``a - b`` inverts ``b``, so it needs logic from
    ``b``'s lowest live bit up to the highest live bit of either operand.
    """
    a, b = node.children
    (a_lo, a_hi), (b_lo, b_hi) = (_active_bits(c, node.width) for c in node.children)
    if node.kind == "add":
        return max(0, min(a_hi, b_hi) - max(a_lo, b_lo))
    return max(0, max(a_hi, b_hi) - b_lo)       # children are (plus, minus)


@dataclass(frozen=True)
class TreeCost:
    """What the output channels of one layer cost, counting logic they share only once."""

    adder_bits: tuple[int, ...]       # one entry per distinct two-input adder or subtractor
    chained_bits: int                 # bits of the adders fed by another adder in the same clock period
    multipliers: int                  # configurable x_bits x w_bits multipliers
    x_bits: int
    w_bits: int
    out_bits: tuple[int, ...]         # accumulator width of every channel
    stages: int                       # clock cycles from input to the output registers
    pipeline_bits: int                # flip-flops of pipeline, delay and output registers
    register_bits: int                # configurable weight and bias bits (active registers)


def _live_width(node: Node) -> int:
    """Flip-flops a registered signal needs: its known-zero low bits are constants, not registers."""
    return node.width - min(node.tz, node.width)


def tree_cost(trees) -> TreeCost:
    """The cost of a layer's channels (a Tree or a list of them).

    Logic is shared the way synthesis shares it (Yosys's ``opt_merge``, Vitis HLS's common
    subexpressions): two channels that multiply the same input by the same constant use one
    product, and a signal delayed in several channels uses one delay line. Each distinct node is
    counted once, found by its structure.
    """
    trees = [trees] if isinstance(trees, Tree) else list(trees)
    ids: dict[tuple, int] = {}
    unique: dict[int, tuple[Node, tuple[int, ...]]] = {}     # id -> (node, child ids)
    uses: dict[int, int] = {}

    def visit(node: Node, channel: int) -> tuple[int, int]:
        """The node's identity and offset: nodes that compute the same signal up to a left shift
        (``6x = 3x << 1``) share one identity, as synthesis trims their constant low bits and then
        finds the same adder."""
        children = [visit(child, channel) for child in node.children]
        if node.children:
            offset = min(o for _, o in children)
            key = (node.kind, node.registered, *((i, o - offset) for i, o in children), *node.delays)
        elif node.kind in ("product", "bias"):
            offset, key = 0, (node.kind, channel, node.index, node.shift)   # each channel has its own registers
        elif node.kind == "shift":
            offset, key = node.shift, ("shift", node.index)
        else:
            offset, key = 0, ("const", node.value)
        me = ids.setdefault(key, len(ids))
        if me not in unique:
            child_ids = tuple(i for i, _ in children)
            unique[me] = (node, child_ids)
            for child_id in child_ids:
                uses[child_id] = uses.get(child_id, 0) + 1
        return me, offset

    roots = []
    for channel, tree in enumerate(trees):
        if tree.root is not None:
            visit(tree.root, channel)
            roots.append(tree.root)

    adders: list[int] = []
    chained = pipeline = registers = 0
    delays: set = set()
    for node, child_ids in unique.values():
        if node.children:
            bits = adder_bits(node)
            adders.append(bits)
            # Synthesis merges an adder with an unregistered adder that feeds only it into one
            # multi-operand adder, which costs more per bit than two plain ones.
            if any(child.children and not child.registered and delay == 0 and uses[child_id] == 1
                   for child, child_id, delay in zip(node.children, child_ids, node.delays)):
                chained += bits
            pipeline += _live_width(node) if node.registered else 0
            for child, child_id, delay in zip(node.children, child_ids, node.delays):
                for step in range(1, delay + 1):          # a delay line shared by every user
                    if (child_id, step) not in delays:
                        delays.add((child_id, step))
                        pipeline += _live_width(child)
        elif node.kind == "product":
            pipeline += node.width                        # the multiplier's output register
            registers += trees[0].w_bits
        elif node.kind == "bias":
            registers += signed_width(node.lo >> node.shift, node.hi >> node.shift)
    pipeline += sum(_live_width(root) for root in roots if root.kind == "shift")   # lone terms' output registers
    return TreeCost(
        adder_bits=tuple(adders), chained_bits=chained,
        multipliers=sum(len(t.products) for t in trees), x_bits=trees[0].x_bits, w_bits=trees[0].w_bits,
        out_bits=tuple(r.width for r in roots), stages=max((r.ready or 0 for r in roots), default=0),
        pipeline_bits=pipeline, register_bits=registers,
    )


# --------------------------------------------------------------------------------------------
# The same tree as Verilog (for synthesis with Yosys)
# --------------------------------------------------------------------------------------------

def tree_verilog(trees: list[Tree], module: str = "top") -> str:
    """A module computing every tree (one output channel each) from a shared input bus ``x``,
    pipelined as scheduled. Channel ``c``'s sum is the output register ``y<c>``.

    Configurable weights and biases live in one register chain loaded serially (``load``/``din``):
    flip-flops with a clock enable and no logic, standing in for the active registers.
    """
    n_inputs, x_bits = trees[0].n_inputs, trees[0].x_bits
    wires: list[str] = []
    regs: list[str] = []
    registers: list[tuple[str, int]] = []      # configurable registers, in chain order
    count = [0]

    def fresh() -> str:
        count[0] += 1
        return f"n{count[0]}"

    def delayed(name: str, width: int, n: int) -> str:
        for _ in range(n):
            out = fresh()
            regs.append(f"  reg signed [{width - 1}:0] {out};\n  always @(posedge clk) {out} <= {name};")
            name = out
        return name

    def emit(node: Node, channel: int) -> str:
        x = f"$signed({{1'b0, x[{node.index * x_bits} +: {x_bits}]}})"
        if node.kind in ("add", "sub"):
            left, right = (delayed(emit(child, channel), child.width, n)
                           for child, n in zip(node.children, node.delays))
            expression = f"{left} {'+' if node.kind == 'add' else '-'} {right}"
        elif node.kind == "shift":
            expression = f"{x} <<< {node.shift}"
        elif node.kind == "product":
            weight = f"w{channel}_{node.index}"
            registers.append((weight, trees[channel].w_bits))
            expression = f"({x} * {weight}) <<< {node.shift}"
        elif node.kind == "bias":
            bias = f"b{channel}"
            registers.append((bias, signed_width(node.lo >> node.shift, node.hi >> node.shift)))
            expression = f"{bias} <<< {node.shift}"
        else:   # const
            expression = f"{node.width}'sd{node.value}"
        name = fresh()
        if node.registered or node.kind == "product":
            regs.append(f"  reg signed [{node.width - 1}:0] {name};\n  always @(posedge clk) {name} <= {expression};")
        else:
            wires.append(f"  wire signed [{node.width - 1}:0] {name} = {expression};")
        return name

    ports = ["input clk", f"input [{n_inputs * x_bits - 1}:0] x"]
    for c, tree in enumerate(trees):
        if tree.root is not None:
            ports.append(f"output signed [{tree.root.width - 1}:0] y{c}")
            wires.append(f"  assign y{c} = {emit(tree.root, c)};")
    chain = []
    if registers:
        ports += ["input load", "input din"]
        total = sum(bits for _, bits in registers)
        shifted = f"{{chain[{total - 2}:0], din}}" if total > 1 else "din"
        chain.append(f"  reg [{total - 1}:0] chain;\n  always @(posedge clk) if (load) chain <= {shifted};")
        offset = 0
        for name, bits in registers:
            chain.append(f"  wire signed [{bits - 1}:0] {name} = chain[{offset + bits - 1}:{offset}];")
            offset += bits
    return "\n".join([f"module {module}(", "  " + ",\n  ".join(ports), ");"] + chain + wires + regs
                     + ["endmodule", ""])
