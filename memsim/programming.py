"""Desired conductance updates -> programming pulses -> device states (design section 3).

:func:`make_programmer` builds a :class:`Programmer` for a list of conductance arrays (crossbar
matrices and bias vectors, siemens) made of one memristor card's devices. The Programmer owns the
device states: :meth:`~Programmer.initialize`, :meth:`~Programmer.program` and
:meth:`~Programmer.drift` *write* the caller's arrays from them (so the arrays always hold what the
devices hold); do not edit the arrays by hand in between, or call ``initialize`` again after.

Schemes:

- ``"ideal"``: ``G <- clip(G + dG, lo, hi)`` exactly; no pulses, no energy (stuck devices still
  hold).
- ``"deterministic"`` (design default): each device gets ``n = round(|dG + r|/dG_step)`` pulses of
  the sign of ``dG + r``, at most ``n_max``; ``r`` is the residue below half a step carried from
  the previous update (``carry_residue=True``; what a cap cuts off is dropped). The pulses go
  through the device model, so the realised change differs from ``dG`` as the device dictates.
  ``dG_step`` defaults to the card's nominal step per polarity (``(g_max - g_min)/levels`` for
  NeuroSim cards, ``dw_min`` for the step models, the range over the pulses that cross the window
  for vteam, ``range/1000`` for a levels-free linear card).
- ``"stochastic"``: pulse coincidences as in IBM aihwkit with trains of ``bl`` slots (default 31).
  :meth:`~Programmer.program_outer` takes the rank-one factors (row and column signals) and
  draws one Bernoulli train per row and per column (``p_row = B*|x_i|*s``, ``p_col = B*|d_j|/s``,
  ``B = sqrt(lr/(bl*dG_step))``, ``s`` the update-management balance ``sqrt(max|d|/max|x|)``,
  probabilities clipped at 1); a device receives one pulse per coincident slot, of sign
  ``sign(x_i*d_j)``. :meth:`~Programmer.program` takes a general ``dG`` instead and draws each
  device's count from Binomial(bl, min(1, |dG|/(bl*dG_step))): exactly the marginal law of a
  device's coincidence count, without the correlations along rows and columns.

Every pulse applied (stuck devices included) is counted per device; its energy is
``V**2 * t * (G_before + G_after)/2`` with the card's pulse amplitude ``V`` and width ``t`` of
that polarity. All randomness is counter-based (see :mod:`memsim.devices.pulse_models`), so
:meth:`~Programmer.state_dict` / :meth:`~Programmer.load_state_dict` resume bit for bit, whatever
the number of threads.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from memsim.devices import pulse_models as pm
from memsim.devices.cards import CardError, MemristorCard, load_card

SCHEMES = ("ideal", "deterministic", "stochastic")
PARALLEL_MIN = 4096  # arrays smaller than this are programmed on one thread
PROGRAMMER_OPTIONS = ("bl", "update_management")
STATE_VERSION = 1


class Programmer:
    """Pulse programming of the devices behind a list of conductance arrays. Build it with
    :func:`make_programmer`."""

    def __init__(self, card: MemristorCard, scheme: str, shapes: Sequence[Sequence[int]], seed: int,
                 dG_step: float | None = None, n_max: int = 100, carry_residue: bool = True,
                 bl: int = 31, update_management: bool = True):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown programming scheme {scheme!r} (known: {', '.join(SCHEMES)})")
        if dG_step is not None and not (math.isfinite(dG_step) and dG_step > 0):
            raise ValueError(f"dG_step must be a positive number of siemens, got {dG_step!r}")
        if not (isinstance(n_max, (int, np.integer)) and n_max >= 0):
            raise ValueError(f"n_max must be an integer >= 0, got {n_max!r}")
        if not (isinstance(bl, (int, np.integer)) and 1 <= bl <= 64):
            raise ValueError(f"bl (stochastic train length) must be an integer in 1..64, got {bl!r}")
        self.card = card
        self.scheme = scheme
        self.seed = int(seed)
        self.n_max = int(n_max)
        self.carry_residue = bool(carry_residue)
        self.bl = int(bl)
        self.update_management = bool(update_management)
        self.shapes = [tuple(int(s) for s in sh) for sh in shapes]
        self.sizes = [int(np.prod(sh, dtype=np.int64)) for sh in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        n = int(self.offsets[-1])
        self.spec = pm.device_spec(card, linear_step=dG_step)
        self.step_up = float(dG_step) if dG_step is not None else self.spec.step_up
        self.step_down = float(dG_step) if dG_step is not None else self.spec.step_down
        self.dp, self.stuck = pm.fabricate(self.spec, n, self.seed)
        self.x = np.empty(n)
        g = np.empty(n)
        pm.set_states(self.spec.model, self.dp[:, pm.C_LO].copy(), self.stuck, self.dp, self.spec.gc, self.x, g)
        self.residue = np.zeros(n)
        self.count = np.zeros(n, dtype=np.int64)
        self.age = np.zeros(n)
        self.initialized = False
        self.n_updates = 0
        self.n_reads = 0
        self.total_pulses = 0
        self.total_energy = 0.0
        # scratch
        self._npulse = np.zeros(n, dtype=np.int64)
        self._pol = np.zeros(n, dtype=np.int8)
        self._e = np.zeros(n)
        self._g = np.zeros(n)

    # ---------------------------------------------------------------- helpers
    @property
    def n_devices(self) -> int:
        return int(self.offsets[-1])

    @property
    def g_min(self) -> float:
        return float(self.card.g_min)

    @property
    def g_max(self) -> float:
        return float(self.card.g_max)

    @property
    def dG_step(self) -> tuple[float, float]:
        """The steps (S) the schemes assume for one up and one down pulse."""
        return self.step_up, self.step_down

    def _sl(self, i):
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def _check(self, arrays, what):
        if len(arrays) != len(self.shapes):
            raise ValueError(f"{what}: expected {len(self.shapes)} arrays, got {len(arrays)}")
        for i, (a, sh) in enumerate(zip(arrays, self.shapes)):
            if np.shape(a) != sh:
                raise ValueError(f"{what}[{i}]: expected shape {sh}, got {np.shape(a)}")

    def _flat_in(self, a):
        return np.ascontiguousarray(a, dtype=np.float64).reshape(-1)

    def _write(self, params, i, g):
        p = params[i]
        if isinstance(p, np.ndarray) and p.dtype == np.float64 and p.flags.c_contiguous:
            p.reshape(-1)[:] = g
        else:
            p[...] = g.reshape(self.shapes[i])

    def _apply_counts(self, i):
        """Apply the pulse counts in the scratch arrays to array ``i``; returns (pulses, energy)."""
        s = self._sl(i)
        sp = self.spec
        kernel = pm.apply_pulses if self.sizes[i] >= PARALLEL_MIN else pm.apply_pulses_serial
        kernel(sp.model, self.x[s], self.stuck[s], self.dp[s], sp.gc, sp.tab_g, sp.tab_up, sp.tab_dn,
                        self.count[s], self.age[s], self._npulse[s], self._pol[s], sp.v_up, sp.t_up, sp.v_down,
                        sp.t_down, self.seed, int(self.offsets[i]), self._g[s], self._e[s])
        return int(self._npulse[s].sum()), float(self._e[s].sum())

    def _result(self, pulses, energy):
        total = int(sum(pulses))
        e = float(sum(energy))
        self.total_pulses += total
        self.total_energy += e
        self.n_updates += 1
        return {"pulses": total, "pulses_per_array": [int(p) for p in pulses], "energy": e,
                "energy_per_array": [float(x) for x in energy]}

    # ---------------------------------------------------------------- interface
    def initialize(self, params: list[np.ndarray]) -> None:
        """Set the device states from the conductances ``params`` (S), in place: each value is
        clipped to its device's window and snapped to a level where the device has levels;
        stuck devices take their stuck value. Residues and ages are reset; pulse counters kept."""
        self._check(params, "params")
        sp = self.spec
        for i, p in enumerate(params):
            s = self._sl(i)
            pm.set_states(sp.model, self._flat_in(p), self.stuck[s], self.dp[s], sp.gc, self.x[s], self._g[s])
            self._write(params, i, self._g[s])
        self.residue[:] = 0.0
        self.age[:] = 0.0
        self.initialized = True

    def conductances(self) -> list[np.ndarray]:
        """The devices' conductances (S), new arrays of the programmer's shapes."""
        sp = self.spec
        out = []
        for i, sh in enumerate(self.shapes):
            s = self._sl(i)
            g = np.empty(self.sizes[i])
            pm.states_to_conductances(sp.model, self.x[s], self.stuck[s], self.dp[s], sp.gc, g)
            out.append(g.reshape(sh))
        return out

    def program(self, params: list[np.ndarray], dG: list[np.ndarray]) -> dict[str, Any]:
        """Apply the desired updates ``dG`` (S) with this programmer's scheme; write the
        resulting conductances into ``params``. Returns ``{"pulses", "pulses_per_array",
        "energy" (J), "energy_per_array"}``. Before the first :meth:`initialize`, ``params`` are
        taken as the initial conductances (``initialize(params)`` is called first)."""
        self._check(params, "params")
        self._check(dG, "dG")
        if not self.initialized:
            self.initialize(params)
        sp = self.spec
        pulses, energy = [], []
        for i in range(len(self.shapes)):
            s = self._sl(i)
            d = self._flat_in(dG[i])
            if not np.all(np.isfinite(d)):
                raise ValueError(f"dG[{i}] has non-finite values")
            if self.scheme == "ideal":
                self._npulse[s] = 0
                pm.apply_exact(sp.model, self.x[s], self.stuck[s], self.dp[s], sp.gc, d, self._g[s])
                pulses.append(0)
                energy.append(0.0)
            else:
                big = self.sizes[i] >= PARALLEL_MIN
                if self.scheme == "deterministic":
                    count = pm.counts_deterministic if big else pm.counts_deterministic_serial
                    count(d, self.residue[s], self.step_up, self.step_down, self.n_max, self.carry_residue,
                          self._npulse[s], self._pol[s])
                else:
                    count = pm.counts_stochastic if big else pm.counts_stochastic_serial
                    count(d, self.step_up, self.step_down, self.bl, self.seed, int(self.offsets[i]), self.n_updates,
                          self._npulse[s], self._pol[s])
                n, e = self._apply_counts(i)
                pulses.append(n)
                energy.append(e)
            self._write(params, i, self._g[s])
        return self._result(pulses, energy)

    def program_outer(self, params: list[np.ndarray], row_signals: list, col_signals: list,
                      lr: float | Sequence[float]) -> dict[str, Any]:
        """Rank-one updates ``dG[k] = lr * sum_t outer(row_signals[k][t], col_signals[k][t])`` (S).

        ``row_signals[k]`` has shape ``(rows,)`` or ``(terms, rows)``, ``col_signals[k]`` shape
        ``(cols,)`` or ``(terms, cols)``; for a 1-D array (a bias vector) the column signal may be
        ``None`` (ones). ``lr`` is one number or one per array. With the stochastic scheme each term
        is one coincidence cycle (row and column pulse trains); the other schemes program the
        summed ``dG`` as :meth:`program` would.
        """
        self._check(params, "params")
        if not self.initialized:
            self.initialize(params)
        if len(row_signals) != len(self.shapes) or len(col_signals) != len(self.shapes):
            raise ValueError("program_outer: one row and one column signal per array")
        lrs = list(lr) if isinstance(lr, (list, tuple, np.ndarray)) else [float(lr)] * len(self.shapes)
        rows, cols = [], []
        for i, sh in enumerate(self.shapes):
            r = np.asarray(row_signals[i], dtype=np.float64)
            c = np.ones(1) if col_signals[i] is None else np.asarray(col_signals[i], dtype=np.float64)
            r = r[None, :] if r.ndim == 1 else r
            c = c[None, :] if c.ndim == 1 else c
            if c.shape[0] == 1 and r.shape[0] > 1:
                c = np.repeat(c, r.shape[0], axis=0)
            if r.shape[0] == 1 and c.shape[0] > 1:
                r = np.repeat(r, c.shape[0], axis=0)
            ncols = sh[1] if len(sh) == 2 else 1
            if len(sh) > 2 or r.shape[1] != sh[0] or c.shape[1] != ncols or r.shape[0] != c.shape[0]:
                raise ValueError(f"program_outer[{i}]: signals of shapes {r.shape}, {c.shape} do not fit {sh}")
            rows.append(r)
            cols.append(c)
        if self.scheme != "stochastic":
            dG = [lrs[i] * np.einsum("ti,tj->ij", rows[i], cols[i]).reshape(sh)
                  for i, sh in enumerate(self.shapes)]
            return self.program(params, dG)
        step = 0.5 * (self.step_up + self.step_down)
        pulses, energy = [], []
        for i, sh in enumerate(self.shapes):
            s = self._sl(i)
            n_tot, e_tot = 0, 0.0
            r_all, c_all = rows[i], cols[i]
            nr, nc = r_all.shape[1], c_all.shape[1]
            rmask = np.zeros(nr, dtype=np.uint64)
            cmask = np.zeros(nc, dtype=np.uint64)
            key_r = np.uint64(pm.stream_key(self.seed, pm.STREAM_ROW, self.n_updates * 4096 + i))
            key_c = np.uint64(pm.stream_key(self.seed, pm.STREAM_COL, self.n_updates * 4096 + i))
            lr_i = float(lrs[i])
            for t in range(r_all.shape[0]):
                x, d = r_all[t], c_all[t]
                mx, md = float(np.max(np.abs(x))), float(np.max(np.abs(d)))
                if mx == 0.0 or md == 0.0 or lr_i == 0.0:
                    continue
                b = math.sqrt(abs(lr_i) / (self.bl * step))
                bal = math.sqrt(md / mx) if self.update_management else 1.0
                pm.bernoulli_masks(np.ascontiguousarray(np.minimum(1.0, b * bal * np.abs(x))), self.bl, key_r,
                                   t * nr * self.bl, rmask)
                pm.bernoulli_masks(np.ascontiguousarray(np.minimum(1.0, b / bal * np.abs(d))), self.bl, key_c,
                                   t * nc * self.bl, cmask)
                rs = (np.sign(x) * np.sign(lr_i)).astype(np.int8)
                cs = np.sign(d).astype(np.int8)
                pm.counts_coincidence(rmask, rs, cmask, cs, self._npulse[s], self._pol[s])
                n, e = self._apply_counts(i)
                n_tot += n
                e_tot += e
            sp = self.spec
            pm.states_to_conductances(sp.model, self.x[s], self.stuck[s], self.dp[s], sp.gc, self._g[s])
            self._write(params, i, self._g[s])
            pulses.append(n_tot)
            energy.append(e_tot)
        return self._result(pulses, energy)

    def read(self, params: list[np.ndarray]) -> list[np.ndarray]:
        """Conductances (S) seen by the circuit: ``params`` with fresh read noise (new arrays;
        no state changes)."""
        self._check(params, "params")
        out = []
        for i, p in enumerate(params):
            g = np.empty(self.sizes[i])
            pm.read_conductances(self._flat_in(p), self.spec.read_noise, self.seed, int(self.offsets[i]),
                                 self.n_reads, g)
            out.append(g.reshape(self.shapes[i]))
        self.n_reads += 1
        return out

    def drift(self, params: list[np.ndarray], dt: float) -> None:
        """Retention drift over ``dt`` seconds (the card's ``drift_model``); writes ``params``."""
        self._check(params, "params")
        if not (math.isfinite(dt) and dt >= 0):
            raise ValueError(f"dt must be >= 0 seconds, got {dt!r}")
        if not self.initialized:
            self.initialize(params)
        sp = self.spec
        if sp.drift_kind == 0 or dt == 0:
            self.age += dt
            return
        for i in range(len(self.shapes)):
            s = self._sl(i)
            pm.apply_drift(sp.model, self.x[s], self.stuck[s], self.dp[s], sp.gc, self.age[s], float(dt),
                           sp.drift_kind, sp.drift_tau, sp.drift_nu, sp.drift_t0, sp.drift_rest, self._g[s])
            self._write(params, i, self._g[s])

    def pulse_totals(self) -> list[np.ndarray]:
        """Cumulative pulses per device (int64 arrays of the programmer's shapes)."""
        return [self.count[self._sl(i)].reshape(sh).copy() for i, sh in enumerate(self.shapes)]

    def last_pulses(self) -> list[np.ndarray]:
        """Signed pulse counts (+ up, - down) of the most recent :meth:`program` call, per device
        (for :meth:`program_outer`, of its last coincidence cycle); zeros for the ideal scheme."""
        signed = self._npulse * self._pol
        return [signed[self._sl(i)].reshape(sh).copy() for i, sh in enumerate(self.shapes)]

    def stuck_mask(self) -> list[np.ndarray]:
        """Per device: 0 healthy, 1 stuck at g_min, 2 stuck at g_max (int8 arrays)."""
        return [self.stuck[self._sl(i)].reshape(sh).copy() for i, sh in enumerate(self.shapes)]

    def device_parameters(self) -> list[np.ndarray]:
        """The device-to-device parameters, ``(*shape, N_DEV_PARAMS)`` per array (columns: see
        :mod:`memsim.devices.pulse_models`, ``C_*``)."""
        return [self.dp[self._sl(i)].reshape(*sh, pm.N_DEV_PARAMS).copy() for i, sh in enumerate(self.shapes)]

    def state_dict(self) -> dict[str, np.ndarray | int | float]:
        """Everything needed to resume bit for bit (arrays are copies)."""
        return {
            "version": STATE_VERSION,
            "model": int(self.spec.model),
            "scheme": SCHEMES.index(self.scheme),
            "seed": self.seed,
            "sizes": np.asarray(self.sizes, dtype=np.int64),
            "state": self.x.copy(),
            "stuck": self.stuck.copy(),
            "device_params": self.dp.copy(),
            "residue": self.residue.copy(),
            "pulse_count": self.count.copy(),
            "age": self.age.copy(),
            "n_updates": int(self.n_updates),
            "n_reads": int(self.n_reads),
            "total_pulses": int(self.total_pulses),
            "total_energy": float(self.total_energy),
            "step_up": float(self.step_up),
            "step_down": float(self.step_down),
        }

    def load_state_dict(self, d: dict) -> None:
        """Restore :meth:`state_dict` (of a programmer built with the same card, scheme and shapes)."""
        if int(d["model"]) != self.spec.model or not np.array_equal(np.asarray(d["sizes"]), self.sizes):
            raise ValueError("state_dict is from a programmer with another device model or other shapes")
        n = self.n_devices
        for key, dst, dtype in (("state", "x", np.float64), ("stuck", "stuck", np.int8),
                                ("residue", "residue", np.float64), ("pulse_count", "count", np.int64),
                                ("age", "age", np.float64)):
            a = np.array(d[key], dtype=dtype).reshape(-1)
            if a.size != n:
                raise ValueError(f"state_dict[{key!r}] has {a.size} entries, expected {n}")
            setattr(self, dst, a)
        dp = np.array(d["device_params"], dtype=np.float64).reshape(n, pm.N_DEV_PARAMS)
        self.dp = np.ascontiguousarray(dp)
        self.seed = int(d["seed"])
        self.n_updates = int(d["n_updates"])
        self.n_reads = int(d["n_reads"])
        self.total_pulses = int(d["total_pulses"])
        self.total_energy = float(d["total_energy"])
        self.step_up = float(d["step_up"])
        self.step_down = float(d["step_down"])
        self.initialized = True


def make_programmer(card: MemristorCard | str, scheme: str, shapes: list[tuple[int, ...]], seed: int,
                    dG_step: float | None = None, n_max: int = 100, carry_residue: bool = True,
                    **overrides) -> Programmer:
    """A :class:`Programmer` for arrays of ``shapes`` made of ``card``'s devices.

    ``card`` is a :class:`MemristorCard` or a bundled card name. ``scheme`` is ``"ideal"``,
    ``"deterministic"`` or ``"stochastic"``. ``seed`` fixes the fabrication (device-to-device
    spread, stuck devices) and all noise. ``dG_step`` (S) is the step the scheme assumes per pulse
    (default: the card's nominal step per polarity); ``n_max`` caps the pulses per device and
    update; ``carry_residue`` keeps the sub-step remainder for the next update.

    ``overrides``: ``bl`` (train length of the stochastic scheme, default 31),
    ``update_management`` (default True), and any card field or parameter (``g_min``,
    ``c2c_sigma=0``, ``read_noise=0.02``, ...): the card is rebuilt and re-checked, so a bad value
    raises :class:`~memsim.devices.cards.CardError`.
    """
    if isinstance(card, str):
        card = load_card("memristor", card)
    opts = {}
    for key in list(overrides):
        if key.lower() in PROGRAMMER_OPTIONS:
            opts[key.lower()] = overrides.pop(key)
    if overrides:
        fields = {f.name for f in dataclasses.fields(MemristorCard)} - {"params", "name", "source"}
        changes = {k: overrides.pop(k) for k in list(overrides) if k in fields}
        params = dict(card.params)
        params.update(overrides)
        card = dataclasses.replace(card, params=params, **changes)
        card.check()
    if not isinstance(card, MemristorCard):
        raise CardError(f"make_programmer needs a memristor card, got {type(card).__name__}")
    return Programmer(card, scheme, shapes, seed, dG_step=dG_step, n_max=n_max, carry_residue=carry_residue,
                      **opts)
