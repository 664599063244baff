import numpy as np
import pytest

from memsim.circuit import CircuitSpec, init_network
from memsim.devices import load_card


def make_net(sizes, amplifier=None, seed=0, g_lo=1e-7, g_hi=1e-5, diode="1n4148", input_gain=4.0,
             v_lo=-0.3, v_hi=0.3):
    """A random canonical network with conductances uniform in [g_lo, g_hi] siemens."""
    amp = load_card("amplifier", amplifier) if amplifier else None
    spec = CircuitSpec(sizes, input_gain=input_gain, bias_voltage=1.0, v_lo=v_lo, v_hi=v_hi,
                       diode=load_card("diode", diode), amplifier=amp)
    return init_network(spec, np.random.default_rng(seed), g_lo, g_hi)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
