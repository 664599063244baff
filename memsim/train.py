"""Training: epochs of mini-batches, each an EqProp step on the analog network.

One step clamps the batch's inputs, settles the free phase, the nudged phase(s), turns the
Theorem-1 gradients into conductance updates (SGD in units of ``conductance_unit``), and programs
them into the devices. Everything per sample runs in Numba kernels; Python handles batches.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from memsim.circuit import CircuitSpec, Network, init_network, input_voltages, target_voltages
from memsim.config import TrainConfig, learning_rates
from memsim.datasets import Dataset
from memsim.devices.cards import load_card
from memsim.devices.memristor import apply_linear_update
from memsim.energy import outputs
from memsim.eqprop import conductance_gradients, run_phases
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
        self.cfg = cfg
        self.data = data
        self.rng = np.random.default_rng(cfg.seed)
        self.spec = build_spec(cfg, data.n_features, data.n_classes)
        card = self.spec.memristor
        self.g_min, self.g_max = card.g_min, card.g_max
        self.net = net if net is not None else init_network(self.spec, self.rng, self.g_min, self.g_max, cfg.init_scale)
        self.lrs = learning_rates(cfg)
        self.epochs_done = 0
        self.total_pulses = 0

    # -- phases ------------------------------------------------------------------------------
    def step(self, x: np.ndarray, y: np.ndarray, first_sample: int = 0) -> dict:
        """One EqProp step on a batch; returns loss, correct count and solver stats."""
        cfg = self.cfg
        spec = self.spec
        packed = pack(self.net)
        v_in = input_voltages(spec, x)
        drive0 = input_drive(packed, v_in)
        target = target_voltages(y, spec.n_classes, cfg.target_amplitude)
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
        loss = 0.5 * ((d - target) ** 2).sum(1)
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

    def apply_gradients(self, grads: list[np.ndarray]) -> None:
        """SGD in units of ``conductance_unit``, clipped to the device bounds (ideal programming)."""
        u = self.cfg.conductance_unit
        L = self.spec.n_free_layers
        params = self.net.parameters()
        for i, (p, g) in enumerate(zip(params, grads)):
            layer = i if i < L else (i - L) % L
            dG = (-self.cfg.gradient_sign * self.lrs[layer] * self._lr_factor() * u * u) * g
            apply_linear_update(p, dG, self.g_min, self.g_max)

    def trace_phases(self, k: int) -> dict[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Node-voltage transients of every phase for the first ``k`` test samples, with the
        current conductances: ``{i: {phase: (time (T,) s, voltage (T, N) V)}}`` (transient engine,
        from rest with the inputs switched on at t = 0; whatever engine trains)."""
        from memsim.transient import phase_trajectories, run_phases_transient

        cfg, spec = self.cfg, self.spec
        x, y = self.data.x_test[:k], self.data.y_test[:k]
        packed = pack(self.net)
        drive0 = input_drive(packed, input_voltages(spec, x))
        target = target_voltages(y, spec.n_classes, cfg.target_amplitude)
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
        packed = pack(self.net)
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
            t = target_voltages(yb, spec.n_classes, self.cfg.target_amplitude)
            tot_loss += float(0.5 * ((d - t) ** 2).sum())
            correct += int((d.argmax(1) == yb).sum())
            clipped += self._clipped(V) * len(xb)
        n = max(len(x), 1)
        return tot_loss / n, correct / n, clipped / n

    def epoch(self, progress: Callable[[int, int], None] | None = None) -> EpochResult:
        cfg = self.cfg
        t0 = time.perf_counter()
        x, y = self.data.x_train, self.data.y_train
        order = self.rng.permutation(len(x))
        B = cfg.batch_size
        tot_loss = 0.0
        correct = 0
        sweeps = []
        clipped = []
        settle_time = 0.0
        steps = []
        n_batches = math.ceil(len(x) / B)
        for bi, s in enumerate(range(0, len(x), B)):
            idx = order[s:s + B]
            r = self.step(x[idx], y[idx], first_sample=s)
            tot_loss += r["loss"]
            correct += r["correct"]
            sweeps.append(r["sweeps"])
            clipped.append(r["clipped"])
            settle_time += r["settle_time"]
            steps.append(r["steps"])
            if progress is not None:
                progress(bi + 1, n_batches)
        self.epochs_done += 1
        test_loss, test_acc, test_clip = self.evaluate(self.data.x_test, self.data.y_test)
        n = max(len(x), 1)
        extra = {}
        if cfg.engine == "transient":
            extra = {"emulated_time": settle_time, "steps_per_phase": float(np.mean(steps)) if steps else 0.0}
        return EpochResult(tot_loss / n, correct / n, test_loss, test_acc, float(np.mean(clipped)) if clipped else 0.0,
                           float(np.mean(sweeps)) if sweeps else 0.0, 0, 0.0, time.perf_counter() - t0, extra)


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
        writer = RunWriter.create(out, cfg.to_dict(), cfg.seed, overwrite=overwrite)
        with writer.transaction() as f:
            writer.write_network(f, trainer.net)
        elapsed = 0.0
    status, error = "failed", ""
    try:
        with SignalGuard() as guard:
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

                r = trainer.epoch(progress)
                elapsed += r.wall_time
                row = {
                    "epoch": e, "train_loss": r.train_loss, "train_accuracy": r.train_accuracy,
                    "test_loss": r.test_loss, "test_accuracy": r.test_accuracy, "wall_time": r.wall_time,
                    "pulses": r.pulses, "programming_energy": r.programming_energy,
                    "clipped_fraction": r.clipped_fraction, "mean_sweeps": r.mean_sweeps, **r.extra,
                }
                traces = trainer.trace_phases(cfg.trace) if cfg.trace else None
                commit_bytes = 8 * trainer.net.n_devices * (2 if cfg.snapshot_every else 1) + 65536
                if traces:
                    commit_bytes += sum(v.nbytes + t.nbytes for p in traces.values() for t, v in p.values())
                with writer.transaction(commit_bytes) as f:  # atomic: a written copy replaces the file
                    writer.append_metrics(f, row)
                    writer.write_network(f, trainer.net)
                    if cfg.snapshot_every and e % cfg.snapshot_every == 0:
                        writer.write_snapshot(f, e, trainer.net)
                    if traces:
                        writer.write_trajectories(f, e, traces, trainer.spec)
                    writer.write_checkpoint(f, e, {"rng_state": _rng_state(trainer.rng), "epochs_done": e,
                                                   "total_pulses": trainer.total_pulses, "wall_time_total": elapsed})
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
