"""memsim's equilibrium against ngspice's operating point of the exported netlist, node by node.

Two netlist flavours are checked (see :mod:`memsim.netlist`):

* ``diode="shockley"``: the diodes are B sources with memsim's exact Shockley law, so both
  simulators solve the same equations: every node must agree to 1e-9 V (measured ~1e-12 V).
  This is the strict check of the topology and of every sign convention.
* ``diode="model"``: ngspice's own junction diode (``.model D``). ngspice replaces the Shockley
  law by a cubic approximation beyond 3*n*Vt of reverse bias (at most 0.4% of Is apart), which
  moves nodes by ~1e-7 V: free nodes must agree to 1e-6 V, amplifier outputs ``u = A*h`` to
  ``A`` times that.
"""
from __future__ import annotations

import numpy as np
import pytest

from memsim.circuit import CircuitSpec, Network, init_network, node_names, target_voltages
from memsim.devices.cards import AmplifierCard, DiodeCard, load_card
from memsim.energy import layer_sources, outputs
from memsim.netlist import named_voltages, write_netlist
from memsim.solve import free_equilibrium
from memsim.spice import ngspice_available, run_op

pytestmark = [
    pytest.mark.spice,
    pytest.mark.skipif(not ngspice_available(),
                       reason="ngspice not found (apt-get install ngspice, or set MEMSIM_NGSPICE): "
                              "SPICE cross-checks skipped"),
]

BETA = 1e-7  # S
PHASES = (("free", 0.0), ("nudge_plus", BETA), ("nudge_minus", -BETA))
TOL_EXACT = 1e-9  # V, diode="shockley"
TOL_MODEL = 1e-6  # V, diode="model"

SAT_AMP = AmplifierCard(name="sat1", source="test: gain 10 saturating at +-2.5 V, offset 50 mV",
                        gain=10.0, backward_gain=0.1, offset=0.05, saturation=2.5)
OFFSET_AMP = AmplifierCard(name="off", source="test: non-reciprocal, offset 30 mV, no saturation",
                           gain=2.0, backward_gain=0.7, offset=0.03)
RS_DIODE = DiodeCard(name="rs10k", source="test: 1N4148 junction behind 10 kOhm",
                     saturation_current=2.52e-9, emission_coefficient=1.752, series_resistance=1e4)

CONFIGS = {
    "12-6-4": dict(sizes=(12, 6, 4), amplifier=None, diode="knee015"),
    "16-8-6-4-ebana10": dict(sizes=(16, 8, 6, 4), amplifier="ebana10", diode="knee015"),
    "16-8-6-4-offset": dict(sizes=(16, 8, 6, 4), amplifier=OFFSET_AMP, diode="knee015"),
    "16-8-6-4-unity": dict(sizes=(16, 8, 6, 4), amplifier="unity", diode="knee015", zeros=True),
    "12-6-4-1n4148": dict(sizes=(12, 6, 4), amplifier=None, diode="1n4148"),
    "12-6-4-rs10k": dict(sizes=(12, 6, 4), amplifier=None, diode=RS_DIODE),
    "16-8-6-4-saturating": dict(sizes=(16, 8, 6, 4), amplifier=SAT_AMP, diode="1n4148"),
}


def make_case(sizes, amplifier, diode, seed=0, n_samples=3, zeros=False):
    rng = np.random.default_rng(seed)
    amp = load_card("amplifier", amplifier) if isinstance(amplifier, str) else amplifier
    dio = load_card("diode", diode) if isinstance(diode, str) else diode
    spec = CircuitSpec(sizes, input_gain=6.0, bias_voltage=1.0, v_lo=-0.1, v_hi=0.3, diode=dio, amplifier=amp)
    net = init_network(spec, rng, 1e-7, 1e-5)  # 0.1 - 10 uS
    if zeros:  # open circuits (G = 0) must be handled
        net.weights[0][0, :3] = 0.0
        net.weights[1][2, 1] = 0.0
        net.bias_plus[0][1] = 0.0
    x = rng.uniform(0.0, 1.0, size=(n_samples, spec.n_features))
    y = target_voltages(rng.integers(0, spec.n_classes, n_samples), spec.n_classes, 0.5)
    return net, x, y


def compare(net, x, y, diode_mode):
    """Largest |V_memsim - V_ngspice| per node group over samples and phases; and the equilibria."""
    names = node_names(net.spec)
    worst = {"inputs": 0.0, "free": 0.0, "amplifier": 0.0}
    eq = {}
    for phase, beta in PHASES:
        V = free_equilibrium(net, x, tol=1e-12, beta=beta, target=y)
        eq[phase] = V
        for s in range(len(x)):
            spice = run_op(write_netlist(net, x[s], phase, BETA, y[s], diode=diode_mode))
            ours = named_voltages(net, x[s], V[s])
            for group, keys in names.items():
                if keys:
                    worst[group] = max(worst[group], max(abs(ours[k] - spice[k]) for k in keys))
    return worst, eq


def _amp_gain(net):
    return net.spec.amplifier.gain if net.spec.amplifier is not None else 1.0


def _check_physics_exercised(net, eq):
    """The comparison means something only if the diodes conduct and the nudge moves the outputs."""
    spec = net.spec
    V = eq["free"]
    hidden = V[:, : spec.free_offsets[spec.n_hidden_layers]]
    clipped = ((hidden > spec.v_hi) | (hidden < spec.v_lo)).mean()
    assert clipped > 0.2, f"only {clipped:.0%} of the hidden nodes are clipped by a diode"
    shift = np.abs(outputs(net, eq["nudge_plus"]) - outputs(net, eq["free"])).max()
    assert shift > 1e3 * TOL_EXACT, f"the nudge barely moves the outputs ({shift:.2g} V)"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_exact_diode_netlist_matches_memsim(name):
    net, x, y = make_case(**CONFIGS[name])
    worst, eq = compare(net, x, y, "shockley")
    _check_physics_exercised(net, eq)
    assert worst["inputs"] < 1e-12
    assert worst["free"] < TOL_EXACT, worst
    assert worst["amplifier"] < TOL_EXACT, worst


@pytest.mark.parametrize("name", list(CONFIGS))
def test_spice_diode_model_matches_memsim(name):
    net, x, y = make_case(**CONFIGS[name])
    worst, _ = compare(net, x, y, "model")
    assert worst["free"] < TOL_MODEL, worst
    assert worst["amplifier"] < TOL_MODEL * _amp_gain(net), worst


def test_series_resistance_matters():
    """Rs changes the equilibrium well beyond the tolerances, so the rs10k cases test it."""
    net, x, _ = make_case(**CONFIGS["12-6-4-rs10k"])
    plain = DiodeCard("no-rs", "test", RS_DIODE.saturation_current, RS_DIODE.emission_coefficient, 0.0)
    net0 = net.copy()
    net0.spec = CircuitSpec(**{**net.spec.__dict__, "diode": plain})
    d = np.abs(free_equilibrium(net, x, tol=1e-12) - free_equilibrium(net0, x, tol=1e-12)).max()
    assert d > 1e-3


def test_saturating_amplifier_saturates():
    """The saturating cases above do exercise the clip: amplifiers both in and out of saturation."""
    net, x, _ = make_case(**CONFIGS["16-8-6-4-saturating"])
    V = free_equilibrium(net, x, tol=1e-12)
    u = np.abs(layer_sources(net, V)[0])
    sat = net.spec.amplifier.saturation
    assert (u >= sat).mean() > 0.2 and (u < sat - 0.05).mean() > 0.2, u
    spice = run_op(write_netlist(net, x[0], diode="shockley"))
    ours = named_voltages(net, x[0], V[0])
    amp = node_names(net.spec)["amplifier"]
    assert any(abs(abs(spice[k]) - sat) < 1e-12 for k in amp)
    assert max(abs(spice[k] - ours[k]) for k in amp) < TOL_EXACT


def test_thermal_voltage_constants():
    """ngspice 39 uses the CODATA-2014 k and q: ``exact_vt`` rescales the netlist temperature so that
    its Vt is memsim's. Two hidden nodes conducting hard through one diode each (the other diode
    deep in reverse, where ngspice's approximation is negligible) resolve the 3.4e-7 relative gap."""
    spec = CircuitSpec((2, 2, 2), input_gain=2.0, bias_voltage=1.0, v_lo=-0.1, v_hi=0.1,
                       diode=load_card("diode", "knee015"))
    eye = np.eye(2) * 1e-4
    net = Network(spec, [eye, eye.copy()], [np.full(2, 1e-6)] * 2, [np.full(2, 1e-6)] * 2)
    x = np.ones((1, 1))
    ours = named_voltages(net, x[0], free_equilibrium(net, x, tol=1e-13)[0])
    assert ours["h1_0"] > spec.v_hi + 0.2 and ours["h1_1"] < spec.v_lo - 0.2

    def err(exact_vt):
        spice = run_op(write_netlist(net, x[0], exact_vt=exact_vt))
        return max(abs(spice[k] - ours[k]) for k in ours)

    assert err(True) < 1e-9
    assert err(False) > 3e-8


def test_netlist_node_names_and_arguments():
    net, x, y = make_case(**CONFIGS["16-8-6-4-ebana10"], n_samples=1)
    spice = run_op(write_netlist(net, x[0], "nudge_plus", BETA, y[0]))
    for keys in node_names(net.spec).values():
        assert set(keys) <= set(spice)
    with pytest.raises(ValueError, match="phase"):
        write_netlist(net, x[0], "nudge")
    with pytest.raises(ValueError, match="target"):
        write_netlist(net, x[0], "nudge_minus", BETA)
    with pytest.raises(ValueError, match="features"):
        write_netlist(net, x[0, :-1])
    # beta is ignored in the free phase
    assert write_netlist(net, x[0], "free", BETA, y[0]) == write_netlist(net, x[0], "free")


def test_run_op_reports_ngspice_errors():
    bad = "broken\nV1 a 0 DC 1\nV2 a 0 DC 2\n.end\n"  # two sources fighting: singular matrix
    with pytest.raises(RuntimeError, match="ngspice"):
        run_op(bad)
    with pytest.raises(RuntimeError, match="ngspice"):
        run_op("garbage\nQ1 a b\n.end\n")
