"""The canonical analog network of DESIGN.md: layers, circuit constants, node names, conductances.

Layers and nodes
----------------
``sizes = (n_in, h_1, ..., h_H, n_out)`` counts *nodes*: ``n_in = 2*F`` input nodes for ``F``
features (``+g_in*x`` then ``-g_in*x``, ideal voltage sources), hidden diode-clamped nodes, and
``n_out = 2*C`` output nodes for ``C`` classes (``out+`` nodes first, then ``out-``), read
differentially ``d_k = V(out_k+) - V(out_k-)``.

The *free* layers (solved for) are the hidden layers and the output layer, indexed
``l = 0 .. L-1`` with ``L = len(sizes) - 1``. Crossbar ``k`` (conductance matrix of shape
``(sizes[k], sizes[k+1])``, siemens) connects free layer ``k-1`` (the inputs for ``k = 0``) to
free layer ``k``. Every free node has two bias conductances, to ``+V_b`` and to ``-V_b``.

Between hidden layers (``H >= 2``) a bidirectional amplifier per node drives crossbar ``l+1`` with
``u = clip(A*h + V_os, +-V_sat)`` and draws ``A_b`` times the crossbar's current from ``h``.

Units: volts, siemens, amperes, kelvin.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from memsim.devices.cards import AmplifierCard, DiodeCard, MemristorCard
from memsim.devices.diode import thermal_voltage


@dataclass(frozen=True)
class CircuitSpec:
    """Topology and fixed circuit constants of a network (everything except the conductances)."""

    sizes: tuple[int, ...]
    input_gain: float  # V: the inputs are +-input_gain*x for x in [0, 1]
    bias_voltage: float  # V: the bias rails are +-bias_voltage
    v_lo: float  # V: lower diode rail of every hidden node
    v_hi: float  # V: upper diode rail of every hidden node
    diode: DiodeCard
    amplifier: AmplifierCard | None = None
    temperature: float = 300.15  # K
    memristor: MemristorCard | None = None

    def __post_init__(self):
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))
        if len(self.sizes) < 2:
            raise ValueError("a network needs at least an input and an output layer")
        if any(s <= 0 for s in self.sizes):
            raise ValueError(f"layer sizes must be positive, got {self.sizes}")
        if self.sizes[0] % 2 or self.sizes[-1] % 2:
            raise ValueError(
                f"input and output node counts must be even (inverted inputs, differential outputs), got {self.sizes}"
            )
        if not self.v_lo < self.v_hi:
            raise ValueError(f"diode rails: v_lo ({self.v_lo} V) must be below v_hi ({self.v_hi} V)")

    @property
    def n_features(self) -> int:
        return self.sizes[0] // 2

    @property
    def n_classes(self) -> int:
        return self.sizes[-1] // 2

    @property
    def n_free_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def n_hidden_layers(self) -> int:
        return len(self.sizes) - 2

    @property
    def free_sizes(self) -> tuple[int, ...]:
        return self.sizes[1:]

    @property
    def free_offsets(self) -> np.ndarray:
        """Start of each free layer in the flat vector of free-node voltages (length L+1)."""
        return np.concatenate([[0], np.cumsum(self.free_sizes)]).astype(np.int64)

    @property
    def n_free(self) -> int:
        return int(sum(self.free_sizes))

    @property
    def thermal_voltage(self) -> float:
        return float(thermal_voltage(self.temperature))

    def has_amplifier(self, l: int) -> bool:
        """True when free layer ``l`` is a hidden layer followed by another hidden layer."""
        return self.amplifier is not None and l < self.n_hidden_layers - 1

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["sizes"] = list(self.sizes)
        return d


@dataclass
class Network:
    """Trainable conductances (siemens) of a network.

    ``weights[k]`` has shape ``(sizes[k], sizes[k+1])``; ``bias_plus[l]`` and ``bias_minus[l]``
    (length ``sizes[l+1]``) connect free node ``j`` of layer ``l`` to ``+V_b`` and ``-V_b``.
    """

    spec: CircuitSpec
    weights: list[np.ndarray]
    bias_plus: list[np.ndarray]
    bias_minus: list[np.ndarray]
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        s = self.spec.sizes
        for k, w in enumerate(self.weights):
            if w.shape != (s[k], s[k + 1]):
                raise ValueError(f"crossbar {k}: shape {w.shape}, expected {(s[k], s[k + 1])}")
        for l, (bp, bm) in enumerate(zip(self.bias_plus, self.bias_minus)):
            if bp.shape != (s[l + 1],) or bm.shape != (s[l + 1],):
                raise ValueError(f"bias conductances of layer {l}: wrong shape")

    def parameters(self) -> list[np.ndarray]:
        """All conductance arrays, in a fixed order (crossbars, then bias+ and bias- per layer)."""
        return [*self.weights, *self.bias_plus, *self.bias_minus]

    def copy(self) -> "Network":
        return Network(
            self.spec,
            [w.copy() for w in self.weights],
            [b.copy() for b in self.bias_plus],
            [b.copy() for b in self.bias_minus],
            dict(self.extra),
        )

    @property
    def n_devices(self) -> int:
        return int(sum(p.size for p in self.parameters()))


def init_network(spec: CircuitSpec, rng: np.random.Generator, g_min: float, g_max: float,
                 scale: float = 1.0) -> Network:
    """Random initial conductances, uniform in ``[g_min, g_min + scale*(g_max - g_min)]`` siemens."""
    hi = g_min + scale * (g_max - g_min)
    s = spec.sizes
    weights = [rng.uniform(g_min, hi, size=(s[k], s[k + 1])) for k in range(len(s) - 1)]
    bp = [rng.uniform(g_min, hi, size=s[l + 1]) for l in range(len(s) - 1)]
    bm = [rng.uniform(g_min, hi, size=s[l + 1]) for l in range(len(s) - 1)]
    return Network(spec, weights, bp, bm)


def input_voltages(spec: CircuitSpec, x: np.ndarray) -> np.ndarray:
    """Input node voltages (volts), shape ``(B, 2F)``: ``+g_in*x`` then ``-g_in*x``."""
    x = np.asarray(x, dtype=np.float64)
    return spec.input_gain * np.concatenate([x, -x], axis=1)


def target_voltages(y: np.ndarray, n_classes: int, amplitude: float) -> np.ndarray:
    """Differential output targets (volts): one-hot labels times ``amplitude``, shape ``(B, C)``."""
    t = np.zeros((len(y), n_classes))
    t[np.arange(len(y)), np.asarray(y, dtype=np.int64)] = amplitude
    return t


# -- node names shared by the SPICE netlist and `memsim settle` ---------------------------------

def node_names(spec: CircuitSpec) -> dict[str, list[str]]:
    """Names of the circuit's nodes: ``inputs`` (2F), ``free`` (all free nodes in solver order),
    ``amplifier`` (amplifier output nodes, per hidden layer that has one)."""
    F, C = spec.n_features, spec.n_classes
    inputs = [f"inp{i}" for i in range(F)] + [f"inn{i}" for i in range(F)]
    free: list[str] = []
    amp: list[str] = []
    for l, n in enumerate(spec.free_sizes):
        if l == spec.n_free_layers - 1:
            free += [f"outp{k}" for k in range(C)] + [f"outn{k}" for k in range(C)]
        else:
            free += [f"h{l + 1}_{j}" for j in range(n)]
            if spec.has_amplifier(l):
                amp += [f"u{l + 1}_{j}" for j in range(n)]
    return {"inputs": inputs, "free": free, "amplifier": amp}
