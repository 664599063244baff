"""Training: epochs of mini-batches, each an EqProp step on the analog network.

One step clamps the batch's inputs, settles the free phase, the nudged phase(s), turns the
Theorem-1 gradients into conductance updates (SGD in units of ``conductance_unit``), and programs
them into the devices. Everything per sample runs in Numba kernels; Python handles batches.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from memsim.circuit import CircuitSpec, Network, init_network, input_voltages
from memsim.config import TrainConfig, learning_rates
from memsim.cost import cost_value, nudge_targets
from memsim.datasets import Dataset
from memsim.devices.cards import load_card
from memsim.energy import outputs
from memsim.eqprop import conductance_gradients, run_phases
from memsim.programming import make_programmer
from memsim.signals import SignalGuard
from memsim.solve import input_drive, pack, solve


class NumericalError(RuntimeError):
    """NaN or inf in a phase; names the layer, sample and phase."""


def build_spec(cfg: TrainConfig, n_features: int, n_classes: int) -> CircuitSpec:
    """The circuit of a run: sizes from the dataset and the config, cards resolved."""
    sizes = (2 * n_features, *cfg.hidden, 2 * n_classes)
    amp = load_card("amplifier", cfg.amplifier) if len(cfg.hidden) > 1 else None
    return CircuitSpec(sizes, cfg.input_gain, cfg.bias_voltage, cfg.v_lo, cfg.v_hi,
                       load_card("diode", cfg.diode), amp, cfg.temperature, load_card("memristor", cfg.memristor))


def resolve_scales(cfg: TrainConfig, card) -> TrainConfig:
    """Fill the automatic conductance scales: ``conductance_unit = g_max/20`` and
    ``beta = 0.1*conductance_unit`` (siemens). With them the same learning rate works for cards of
    any conductance range (the EqProp gradient scales as 1/G)."""

    unit = cfg.conductance_unit or card.g_max / 20.0
    beta = cfg.beta or 0.1 * unit
    if (unit, beta) == (cfg.conductance_unit, cfg.beta):
        return cfg
    return dataclasses.replace(cfg, conductance_unit=unit, beta=beta)


def limit_dataset(data: Dataset, train_limit: int, test_limit: int) -> Dataset:
    """``data`` with only the first ``train_limit`` / ``test_limit`` samples (0: all), as views."""

    if not (train_limit or test_limit):
        return data
    tr = slice(None, train_limit or None)
    te = slice(None, test_limit or None)
    return dataclasses.replace(data, x_train=data.x_train[tr], y_train=data.y_train[tr],
                               x_test=data.x_test[te], y_test=data.y_test[te])


def resolved_config(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` as a run stores it: automatic scales filled from its memristor card."""
    return resolve_scales(cfg, load_card("memristor", cfg.memristor))


@dataclass
class EpochProgress:
    """Where an epoch stands: its sample order, the next batch, and the running sums of its metrics."""

    order: np.ndarray
    next_batch: int = 0
    loss: float = 0.0
    correct: int = 0
    sweeps: float = 0.0  # sum over batches of the mean sweeps per phase
    clipped: float = 0.0  # sum over batches of the clipped fraction
    steps: float = 0.0  # transient engine: sum over batches of the mean steps per phase
    settle_time: float = 0.0  # transient engine: emulated settling time (s)
    wall_time: float = 0.0  # s, of the parts already run (before a mid-epoch checkpoint)

    def add(self, r: dict) -> None:
        self.loss += r["loss"]
        self.correct += r["correct"]
        self.sweeps += r["sweeps"]
        self.clipped += r["clipped"]
        self.steps += r["steps"]
        self.settle_time += r["settle_time"]

    def state(self) -> dict:
        d = {f"epoch_{k}": v for k, v in dataclasses.asdict(self).items() if k != "order"}
        d["epoch_order"] = self.order.copy()
        return d

    @classmethod
    def from_state(cls, d: dict) -> "EpochProgress":
        kw = {f.name: d[f"epoch_{f.name}"] for f in dataclasses.fields(cls)}
        kw["order"] = np.asarray(kw["order"], dtype=np.int64)
        kw["next_batch"] = int(kw["next_batch"])
        kw["correct"] = int(kw["correct"])
        return cls(**kw)


@dataclass
class EpochResult:
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    clipped_fraction: float
    mean_sweeps: float
    pulses: int
    programming_energy: float
    wall_time: float
    extra: dict = field(default_factory=dict)


class Trainer:
    """Holds a run's network and state; :meth:`epoch` trains one pass over the training set."""

    def __init__(self, cfg: TrainConfig, data: Dataset, net: Network | None = None):
        self.spec = build_spec(cfg, data.n_features, data.n_classes)
        card = self.spec.memristor
        cfg = resolve_scales(cfg, card)
        self.cfg = cfg
        self.data = limit_dataset(data, cfg.train_limit, cfg.test_limit)
        self.rng = np.random.default_rng(cfg.seed)
        self.g_min, self.g_max = card.g_min, card.g_max
        self.net = net if net is not None else init_network(self.spec, self.rng, self.g_min, self.g_max, cfg.init_scale)
        self.lrs = learning_rates(cfg)
        self.epochs_done = 0
        self.total_pulses = 0
        params = self.net.parameters()
        self.programmer = make_programmer(card, cfg.programming, [p.shape for p in params], seed=cfg.seed,
                                          dG_step=cfg.dG_step or None, n_max=cfg.n_max,
                                          carry_residue=cfg.carry_residue)
        self.programmer.initialize(params)  # the conductances become what the devices hold
        self.read_noise = float(self.programmer.spec.read_noise) > 0
        self.progress: EpochProgress | None = None
        self._pulses = np.zeros(len(params), dtype=np.int64)
        self._energy = np.zeros(len(params))

    # -- phases ------------------------------------------------------------------------------
    def step(self, x: np.ndarray, y: np.ndarray, first_sample: int = 0) -> dict:
        """One EqProp step on a batch; returns loss, correct count and solver stats."""
        cfg = self.cfg
        spec = self.spec
        packed = pack(self.circuit_network())
        v_in = input_voltages(spec, x)
        drive0 = input_drive(packed, v_in)
        target = self.nudge_targets(y)
        V = np.zeros((len(x), spec.n_free))
        if cfg.engine == "transient":
            from memsim.transient import run_phases_transient

            ph = run_phases_transient(packed, drive0, V, target, cfg.beta, cfg.eqprop_mode, cfg.tol,
                                      capacitance=cfg.capacitance, max_sweeps=cfg.max_sweeps,
                                      sample_offset=first_sample)
        else:
            ph = run_phases(packed, drive0, V, target, cfg.beta, cfg.eqprop_mode, cfg.tol, cfg.max_sweeps,
                            sample_offset=first_sample)
        for name, V_ph in (("free", ph.free), ("nudge_plus", ph.plus), ("nudge_minus", ph.minus)):
            if V_ph is not None and not np.isfinite(V_ph).all():
                b, q = np.argwhere(~np.isfinite(V_ph))[0]
                layer = int(np.searchsorted(spec.free_offsets, q, side="right") - 1)
                raise NumericalError(f"non-finite voltage in phase {name}, layer {layer}, sample {first_sample + b}")
        grads = conductance_gradients(self.net, v_in, ph, cfg.beta, cfg.eqprop_mode)
        self.apply_gradients(grads)
        d = outputs(self.net, ph.free)
        loss = self.cost(d, y)
        stats = list(ph.stats.values())
        return {
            "loss": float(loss.sum()),
            "correct": int((d.argmax(1) == y).sum()),
            "sweeps": float(np.mean([s.sweeps.mean() for s in stats])),
            "clipped": self._clipped(ph.free),
            # transient engine: emulated time the chip spends settling this batch's phases (s),
            # samples one after another, and implicit steps per phase
            "settle_time": float(sum(s.settle_time.sum() for s in stats)) if cfg.engine == "transient" else 0.0,
            "steps": float(np.mean([s.steps.mean() for s in stats])) if cfg.engine == "transient" else 0.0,
        }

    def cost(self, d: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-sample cost (V^2) of the differential outputs ``d`` (V) for labels ``y``."""
        return cost_value(self.cfg.loss, d, y, self.cfg.target_amplitude, self.cfg.logit_scale)

    def nudge_targets(self, y: np.ndarray):
        """The nudge's differential targets (V) for labels ``y``: an array for ``mse``, a function
        of the free phase's outputs for ``xent`` (:func:`memsim.cost.nudge_targets`)."""
        cfg = self.cfg
        return nudge_targets(cfg.loss, y, self.spec.n_classes, cfg.target_amplitude, cfg.logit_scale)

    def circuit_network(self) -> Network:
        """The conductances the circuit sees: the devices' own, with read noise when the card has it."""
        if not self.read_noise:
            return self.net
        L = self.spec.n_free_layers
        g = self.programmer.read(self.net.parameters())
        return Network(self.spec, g[:L], g[L:2 * L], g[2 * L:])

    def param_layer(self, i: int) -> int:
        """Free layer of entry ``i`` of ``net.parameters()`` (crossbar k, bias+ and bias- of layer k)."""
        return i % self.spec.n_free_layers

    def apply_gradients(self, grads: list[np.ndarray]) -> None:
        """SGD in units of ``conductance_unit``; the desired updates go to the devices as pulses
        (:mod:`memsim.programming`), which keep them inside ``[G_min, G_max]``."""
        u = self.cfg.conductance_unit
        params = self.net.parameters()
        dG = [(-self.cfg.gradient_sign * self.lrs[self.param_layer(i)] * self._lr_factor() * u * u) * g
              for i, g in enumerate(grads)]
        res = self.programmer.program(params, dG)
        self._pulses += np.asarray(res["pulses_per_array"], dtype=np.int64)
        self._energy += np.asarray(res["energy_per_array"], dtype=np.float64)

    def trace_phases(self, k: int) -> dict[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Node-voltage transients of every phase for the first ``k`` test samples, with the
        current conductances: ``{i: {phase: (time (T,) s, voltage (T, N) V)}}`` (transient engine,
        from rest with the inputs switched on at t = 0; whatever engine trains)."""
        from memsim.transient import phase_trajectories, run_phases_transient

        cfg, spec = self.cfg, self.spec
        x, y = self.data.x_test[:k], self.data.y_test[:k]
        packed = pack(self.net)
        drive0 = input_drive(packed, input_voltages(spec, x))
        target = self.nudge_targets(y)
        V = np.zeros((len(x), spec.n_free))
        ph = run_phases_transient(packed, drive0, V, target, cfg.beta, cfg.eqprop_mode, cfg.tol,
                                  capacitance=cfg.capacitance, max_sweeps=cfg.max_sweeps, trace=np.arange(len(x)))
        return phase_trajectories(ph)

    def _lr_factor(self) -> float:
        return self.cfg.lr_decay ** self.epochs_done

    def _clipped(self, V: np.ndarray) -> float:
        """Fraction of hidden nodes outside the diode window (a diode forward-biased)."""
        n_h = self.spec.free_offsets[-2]
        if n_h == 0:
            return 0.0
        h = V[:, :n_h]
        return float(((h > self.spec.v_hi) | (h < self.spec.v_lo)).mean())

    # -- epochs ------------------------------------------------------------------------------
    def evaluate(self, x: np.ndarray, y: np.ndarray, batch: int = 512) -> tuple[float, float, float]:
        """Mean loss, accuracy and clipped fraction of the free equilibrium on ``(x, y)``."""
        packed = pack(self.circuit_network())
        spec = self.spec
        tot_loss = 0.0
        correct = 0
        clipped = 0.0
        for s in range(0, len(x), batch):
            xb, yb = x[s:s + batch], y[s:s + batch]
            V = np.zeros((len(xb), spec.n_free))
            solve(packed, input_drive(packed, input_voltages(spec, xb)), V, tol=self.cfg.tol,
                  max_sweeps=self.cfg.max_sweeps)
            d = outputs(self.net, V)
            tot_loss += float(self.cost(d, yb).sum())
            correct += int((d.argmax(1) == yb).sum())
            clipped += self._clipped(V) * len(xb)
        n = max(len(x), 1)
        return tot_loss / n, correct / n, clipped / n

    def epoch(self, progress: Callable[[int, int], None] | None = None,
              checkpoint: Callable[[], None] | None = None, checkpoint_every: int = 0) -> EpochResult:
        """Train one pass over the training set (or finish the one :attr:`progress` holds, after a
        mid-epoch resume). ``progress(i, n)`` is called after each batch; ``checkpoint()`` every
        ``checkpoint_every`` batches (not after the last: the epoch's end is committed anyway)."""
        cfg = self.cfg
        t0 = time.perf_counter()
        x, y = self.data.x_train, self.data.y_train
        if self.progress is None:
            self.progress = EpochProgress(order=self.rng.permutation(len(x)))
        pr = self.progress
        B = cfg.batch_size
        n_batches = math.ceil(len(x) / B)
        for bi in range(pr.next_batch, n_batches):
            s = bi * B
            idx = pr.order[s:s + B]
            r = self.step(x[idx], y[idx], first_sample=s)
            pr.add(r)
            pr.next_batch = bi + 1
            if checkpoint is not None and checkpoint_every and pr.next_batch % checkpoint_every == 0 \
                    and pr.next_batch < n_batches:
                pr.wall_time += time.perf_counter() - t0
                t0 = time.perf_counter()
                checkpoint()
            if progress is not None:
                progress(bi + 1, n_batches)
        self.epochs_done += 1
        if cfg.drift_time > 0:
            self.programmer.drift(self.net.parameters(), cfg.drift_time)
        test_loss, test_acc, test_clip = self.evaluate(self.data.x_test, self.data.y_test)
        n = max(len(x), 1)
        nb = max(pr.next_batch, 1)
        extra = {}
        if cfg.engine == "transient":
            extra = {"emulated_time": pr.settle_time, "steps_per_phase": pr.steps / nb}
        L = self.spec.n_free_layers
        for k in range(L):
            sel = [i for i in range(len(self._pulses)) if self.param_layer(i) == k]
            extra[f"pulses_layer_{k}"] = float(self._pulses[sel].sum())
            extra[f"programming_energy_layer_{k}"] = float(self._energy[sel].sum())
        pulses, energy = int(self._pulses.sum()), float(self._energy.sum())
        self._pulses[:] = 0
        self._energy[:] = 0.0
        self.total_pulses += pulses
        self.progress = None
        return EpochResult(pr.loss / n, pr.correct / n, test_loss, test_acc, pr.clipped / nb, pr.sweeps / nb,
                           pulses, energy, pr.wall_time + time.perf_counter() - t0, extra)

    def progress_state(self) -> dict:
        """The unfinished epoch's state (for a mid-epoch checkpoint); empty between epochs."""
        if self.progress is None:
            return {}
        d = self.progress.state()
        d["epoch_pulses"] = self._pulses.copy()
        d["epoch_energy"] = self._energy.copy()
        return d

    def restore_progress(self, d: dict) -> None:
        if "epoch_order" not in d:
            return
        self.progress = EpochProgress.from_state(d)
        self._pulses[:] = d["epoch_pulses"]
        self._energy[:] = d["epoch_energy"]

    def device_records(self) -> dict[str, np.ndarray]:
        """Per-device pulse totals and stuck flags, keyed for ``/network`` (names of the arrays of
        ``net.parameters()``)."""
        out = {}
        for name, tot, stuck in zip(self.param_names(), self.programmer.pulse_totals(), self.programmer.stuck_mask()):
            out[f"pulse_totals_{name}"] = tot
            out[f"stuck_{name}"] = stuck
        return out

    def param_names(self) -> list[str]:
        L = self.spec.n_free_layers
        return ([f"crossbar_{k}" for k in range(L)] + [f"bias_plus_{k}" for k in range(L)]
                + [f"bias_minus_{k}" for k in range(L)])


# ------------------------------------------------------------------------------------------------
# a whole run: data, trainer, HDF5 file, checkpoints, interruption


class StopRequested(Exception):
    """Raised between batches when SIGINT/SIGTERM asked the run to stop."""


def _rng_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def run_training(cfg: TrainConfig, out: str, overwrite: bool = False, resume: bool = False,
                 reporter=None) -> "object":
    """Train ``cfg`` writing the run file ``out``; with ``resume`` continue that file's run.

    ``reporter`` (optional) gets ``epoch_start(epoch, n_batches)``, ``batch_done(i, n)``,
    ``epoch_end(epoch, row)``. Returns the final :class:`Trainer`.
    """
    from memsim.datasets import load_dataset
    from memsim.h5io import RunWriter, open_run

    if resume:
        run = open_run(out)
        ckpt = run.checkpoint()
        if "rng_state" not in ckpt:
            raise ValueError(f"{out}: holds no finished epoch to resume from")
        from memsim.config import make_config

        cfg = make_config({k: v for k, v in run.config.items()})
        data = load_dataset(cfg.dataset, cfg.data_dir, cfg.train_limit or None, cfg.test_limit or None)
        trainer = Trainer(cfg, data, net=run.network())
        prog = {k[len("programmer_"):]: v for k, v in ckpt.items() if k.startswith("programmer_")}
        if prog:
            trainer.programmer.load_state_dict(prog)
            for p, g in zip(trainer.net.parameters(), trainer.programmer.conductances()):
                p[...] = g
        trainer.restore_progress(ckpt)
        trainer.rng.bit_generator.state = ckpt["rng_state"]
        trainer.epochs_done = int(ckpt["epochs_done"])
        trainer.total_pulses = int(ckpt.get("total_pulses", 0))
        writer = RunWriter.append(out)
        with writer.transaction() as f:
            writer.truncate_metrics(f, trainer.epochs_done)
        elapsed = float(ckpt.get("wall_time_total", 0.0))
    else:
        data = load_dataset(cfg.dataset, cfg.data_dir, cfg.train_limit or None, cfg.test_limit or None)
        trainer = Trainer(cfg, data)
        cfg = trainer.cfg  # with the automatic scales resolved
        writer = RunWriter.create(out, cfg.to_dict(), cfg.seed, overwrite=overwrite)
        with writer.transaction() as f:
            writer.write_network(f, trainer.net)
            for name, dp in zip(trainer.param_names(), trainer.programmer.device_parameters()):
                f["network"].create_dataset(f"device_params_{name}", data=dp, compression="gzip")  # fixed at fabrication
        elapsed = 0.0
    def commit_state(f, epochs_done: int) -> None:
        """Network, per-device records and the resume state (RNG, devices, unfinished epoch)."""
        trainer.net.extra = trainer.device_records()
        writer.write_network(f, trainer.net)
        state = {"rng_state": _rng_state(trainer.rng), "epochs_done": epochs_done,
                 "total_pulses": trainer.total_pulses, "wall_time_total": elapsed}
        state.update({f"programmer_{k}": v for k, v in trainer.programmer.state_dict().items()})
        state.update(trainer.progress_state())
        writer.write_checkpoint(f, epochs_done, state)

    def mid_epoch_checkpoint() -> None:
        with writer.transaction(8 * trainer.net.n_devices * 4 + 8 * len(data.x_train) + 65536) as f:
            commit_state(f, trainer.epochs_done)

    status, error = "failed", ""
    try:
        # one BLAS thread: the Numba kernels use the cores, and OpenBLAS' spinning workers between
        # them slow a step by an order of magnitude on 2 cores (bench/train_throughput.py)
        with SignalGuard() as guard, threadpool_limits(limits=1, user_api="blas"):
            while trainer.epochs_done < cfg.epochs:
                e = trainer.epochs_done + 1
                n_batches = math.ceil(len(data.x_train) / cfg.batch_size)
                if reporter:
                    reporter.epoch_start(e, n_batches)

                def progress(i, n):
                    if guard.stop:
                        raise StopRequested(guard.stop)
                    if reporter:
                        reporter.batch_done(i, n)

                r = trainer.epoch(progress, mid_epoch_checkpoint, cfg.checkpoint_every)
                elapsed += r.wall_time
                row = {
                    "epoch": e, "train_loss": r.train_loss, "train_accuracy": r.train_accuracy,
                    "test_loss": r.test_loss, "test_accuracy": r.test_accuracy, "wall_time": r.wall_time,
                    "pulses": r.pulses, "programming_energy": r.programming_energy,
                    "clipped_fraction": r.clipped_fraction, "mean_sweeps": r.mean_sweeps, **r.extra,
                }
                traces = trainer.trace_phases(cfg.trace) if cfg.trace else None
                commit_bytes = 8 * trainer.net.n_devices * (5 if cfg.snapshot_every else 4) + 65536
                if traces:
                    commit_bytes += sum(v.nbytes + t.nbytes for p in traces.values() for t, v in p.values())
                with writer.transaction(commit_bytes) as f:  # atomic: a written copy replaces the file
                    writer.append_metrics(f, row)
                    if cfg.snapshot_every and e % cfg.snapshot_every == 0:
                        writer.write_snapshot(f, e, trainer.net)
                    if traces:
                        writer.write_trajectories(f, e, traces, trainer.spec)
                    commit_state(f, e)
                if reporter:
                    reporter.epoch_end(e, row)
                if guard.stop:
                    raise StopRequested(guard.stop)
        status = "complete"
    except StopRequested:
        status = "interrupted"
        raise
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        try:
            writer.set_status(status, error)
        except OSError:
            pass  # the original failure (e.g. a full disk) is what the user needs to see
    return trainer
