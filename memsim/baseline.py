"""Software baselines in plain numpy: the same-size networks trained by backprop.

Three models, the yardsticks of Kendall et al. (2020) for the analog network:

``logreg``
    logistic (softmax) regression, ``F -> C``.
``mlp``
    ``F -> H -> C`` with a hard-sigmoid hidden activation ``clip(z/4 + 1/2, 0, 1)`` (the
    piecewise-linear sigmoid with the logistic's slope at 0; the diode-clamped node is also a
    piecewise-linear clip).
``mlp-positive``
    the analog network's constraints: the inputs given as ``(x, -x)`` (``2F`` inputs), every
    weight clipped at ``>= 0`` after each update, ``2C`` outputs read differentially
    ``d_k = o_k+ - o_k-``; biases stay signed (the analog bias is the difference of two
    conductances to ``+V_b`` and ``-V_b``).

All three are trained by minibatch backprop of the softmax cross-entropy (of the differential
outputs for ``mlp-positive``) with Adam or SGD, in float64 by default. Everything is a pure function
of arrays so that :func:`loss_and_grads` can be checked against finite differences.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

MODELS = ("logreg", "mlp", "mlp-positive")
OPTIMIZERS = ("adam", "sgd")


class BaselineError(ValueError):
    """A baseline option out of range or unknown."""


@dataclass
class BaselineConfig:
    model: str = "mlp"  # logreg | mlp | mlp-positive
    dataset: str = "digits"
    data_dir: str | None = None
    train_limit: int = 0
    test_limit: int = 0
    hidden: int = 100
    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"  # adam | sgd
    lr: float = 1e-3  # Adam step (or the SGD learning rate)
    lr_decay: float = 1.0  # learning-rate factor per epoch
    momentum: float = 0.0  # SGD only
    seed: int = 0
    dtype: str = "float64"  # float64 | float32

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["kind"] = "baseline"
        return d

    def validate(self) -> "BaselineConfig":
        if self.model not in MODELS:
            raise BaselineError(f"unknown baseline model {self.model!r} (known: {', '.join(MODELS)})")
        if self.optimizer not in OPTIMIZERS:
            raise BaselineError(f"unknown optimizer {self.optimizer!r} (known: {', '.join(OPTIMIZERS)})")
        if self.dtype not in ("float64", "float32"):
            raise BaselineError(f"dtype must be float64 or float32, got {self.dtype!r}")
        for name, lo in (("hidden", 1), ("batch_size", 1), ("epochs", 0), ("train_limit", 0), ("test_limit", 0),
                         ("seed", 0)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise BaselineError(f"baseline option {name!r} must be an integer >= {lo}, got {v!r}")
        for name in ("lr", "lr_decay"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise BaselineError(f"baseline option {name!r} must be a positive number, got {v!r}")
        if not (0.0 <= self.momentum < 1.0):
            raise BaselineError(f"baseline option 'momentum' must be in [0, 1), got {self.momentum!r}")
        return self


# ------------------------------------------------------------------------------------------------
# the models: parameters, forward pass, loss and gradients


def hard_sigmoid(z: np.ndarray) -> np.ndarray:
    return np.clip(0.25 * z + 0.5, 0.0, 1.0)


def hard_sigmoid_grad(z: np.ndarray) -> np.ndarray:
    return ((z > -2.0) & (z < 2.0)) * 0.25


def model_inputs(model: str, x: np.ndarray) -> np.ndarray:
    """The model's input vector: ``x``, or ``(x, -x)`` for the positive-weights MLP."""
    return np.concatenate([x, -x], axis=1) if model == "mlp-positive" else x


def init_params(model: str, n_features: int, n_classes: int, hidden: int, rng: np.random.Generator,
                dtype=np.float64) -> dict[str, np.ndarray]:
    """Initial parameters: ``U(+-sqrt(1/fan_in))`` weights (clamped at 0 for ``mlp-positive``,
    as Scellier 2024 initialises the analog network), zero biases; logreg starts at zero."""
    F, C, H = n_features, n_classes, hidden
    if model == "logreg":
        return {"W1": np.zeros((F, C), dtype), "b1": np.zeros(C, dtype)}

    def u(fan_in, shape):
        a = math.sqrt(1.0 / fan_in)
        return rng.uniform(-a, a, size=shape).astype(dtype)

    if model == "mlp":
        return {"W1": u(F, (F, H)), "b1": np.zeros(H, dtype), "W2": u(H, (H, C)), "b2": np.zeros(C, dtype)}
    if model == "mlp-positive":
        # |U(+-a)| (rather than clamping half to 0) keeps every unit alive at the start
        W1 = np.abs(u(2 * F, (2 * F, H)))
        W2 = np.abs(u(H, (H, 2 * C)))
        return {"W1": W1, "b1": np.zeros(H, dtype), "W2": W2, "b2": np.zeros(2 * C, dtype)}
    raise BaselineError(f"unknown baseline model {model!r} (known: {', '.join(MODELS)})")


def forward(model: str, params: dict, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Logits ``(B, C)`` and the cache backprop needs. ``x``: the model's inputs (see
    :func:`model_inputs`)."""
    if model == "logreg":
        return x @ params["W1"] + params["b1"], {"x": x}
    z = x @ params["W1"] + params["b1"]
    h = hard_sigmoid(z)
    o = h @ params["W2"] + params["b2"]
    if model == "mlp-positive":
        C = o.shape[1] // 2
        o = o[:, :C] - o[:, C:]
    return o, {"x": x, "z": z, "h": h}


def _softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample cross-entropy and its gradient w.r.t. the logits (not divided by B)."""
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    p = e / s
    idx = np.arange(len(y))
    loss = (np.log(s[:, 0]) + m[:, 0]) - logits[idx, y]
    g = p
    g[idx, y] -= 1.0
    return loss, g


def loss_and_grads(model: str, params: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, dict, np.ndarray]:
    """Mean cross-entropy over the batch, its gradient for every parameter, and the logits."""
    logits, cache = forward(model, params, x)
    losses, g = _softmax_xent(logits, y)
    B = len(y)
    g = g / B
    grads: dict[str, np.ndarray] = {}
    if model == "logreg":
        grads["W1"] = cache["x"].T @ g
        grads["b1"] = g.sum(0)
        return float(losses.mean()), grads, logits
    if model == "mlp-positive":
        g = np.concatenate([g, -g], axis=1)
    grads["W2"] = cache["h"].T @ g
    grads["b2"] = g.sum(0)
    gz = (g @ params["W2"].T) * hard_sigmoid_grad(cache["z"])
    grads["W1"] = cache["x"].T @ gz
    grads["b1"] = gz.sum(0)
    return float(losses.mean()), grads, logits


def project(model: str, params: dict) -> None:
    """The positive-weights constraint (in place): weights clipped at 0 for ``mlp-positive``."""
    if model == "mlp-positive":
        for k in ("W1", "W2"):
            np.maximum(params[k], 0.0, out=params[k])


def predict(model: str, params: dict, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Class predictions for raw features ``x`` (``(B, F)``)."""
    out = [forward(model, params, model_inputs(model, x[s:s + batch]))[0].argmax(1) for s in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def evaluate(model: str, params: dict, x: np.ndarray, y: np.ndarray, batch: int = 4096) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on raw features ``x``."""
    tot, correct = 0.0, 0
    for s in range(0, len(x), batch):
        xb, yb = model_inputs(model, x[s:s + batch]), y[s:s + batch]
        logits, _ = forward(model, params, xb)
        tot += float(_softmax_xent(logits, yb)[0].sum())
        correct += int((logits.argmax(1) == yb).sum())
    n = max(len(x), 1)
    return tot / n, correct / n


# ------------------------------------------------------------------------------------------------
# optimisers


class Adam:
    def __init__(self, params: dict, lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: dict, grads: dict, lr_factor: float = 1.0) -> None:
        self.t += 1
        c1 = 1.0 - self.b1 ** self.t
        c2 = 1.0 - self.b2 ** self.t
        a = self.lr * lr_factor * math.sqrt(c2) / c1
        for k, g in grads.items():
            m, v = self.m[k], self.v[k]
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * (g * g)
            params[k] -= a * m / (np.sqrt(v) + self.eps)


class SGD:
    def __init__(self, params: dict, lr: float, momentum: float = 0.0):
        self.lr, self.momentum = lr, momentum
        self.buf = {k: np.zeros_like(v) for k, v in params.items()} if momentum else None

    def step(self, params: dict, grads: dict, lr_factor: float = 1.0) -> None:
        for k, g in grads.items():
            if self.buf is not None:
                b = self.buf[k]
                b *= self.momentum
                b += g
                g = b
            params[k] -= self.lr * lr_factor * g


# ------------------------------------------------------------------------------------------------
# training


@dataclass
class BaselineEpoch:
    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    wall_time: float
    extra: dict = field(default_factory=dict)

    def row(self) -> dict:
        return {"epoch": self.epoch, "train_loss": self.train_loss, "train_accuracy": self.train_accuracy,
                "test_loss": self.test_loss, "test_accuracy": self.test_accuracy, "wall_time": self.wall_time,
                "pulses": 0}


class BaselineTrainer:
    """Minibatch backprop of one baseline model on a :class:`memsim.datasets.Dataset`."""

    def __init__(self, cfg: BaselineConfig, data):
        self.cfg = cfg.validate()
        self.data = data
        self.dtype = np.dtype(cfg.dtype)
        self.rng = np.random.default_rng(cfg.seed)
        self.params = init_params(cfg.model, data.n_features, data.n_classes, cfg.hidden, self.rng, self.dtype)
        self.opt = (Adam(self.params, cfg.lr) if cfg.optimizer == "adam"
                    else SGD(self.params, cfg.lr, cfg.momentum))
        self.epochs_done = 0
        self._x_train = np.asarray(data.x_train, dtype=self.dtype)

    def step(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, int]:
        """One update on a batch of raw features ``(B, F)``; returns the summed loss and the correct
        count."""
        loss, grads, logits = loss_and_grads(self.cfg.model, self.params, model_inputs(self.cfg.model, xb), yb)
        self.opt.step(self.params, grads, self.cfg.lr_decay ** self.epochs_done)
        project(self.cfg.model, self.params)
        return loss * len(yb), int((logits.argmax(1) == yb).sum())

    def epoch(self, progress: Callable[[int, int], None] | None = None) -> BaselineEpoch:
        t0 = time.perf_counter()
        x, y = self._x_train, self.data.y_train
        order = self.rng.permutation(len(x))
        B = self.cfg.batch_size
        n_batches = math.ceil(len(x) / B)
        tot, correct = 0.0, 0
        for bi, s in enumerate(range(0, len(x), B)):
            idx = order[s:s + B]
            l, c = self.step(x[idx], y[idx])
            tot += l
            correct += c
            if progress is not None:
                progress(bi + 1, n_batches)
        self.epochs_done += 1
        test_loss, test_acc = evaluate(self.cfg.model, self.params, np.asarray(self.data.x_test, self.dtype),
                                       self.data.y_test)
        n = max(len(x), 1)
        return BaselineEpoch(self.epochs_done, tot / n, correct / n, test_loss, test_acc, time.perf_counter() - t0)


def _write_params(f, params: dict) -> None:
    """The final weights, in ``/baseline`` (``/network`` is for analog conductances only)."""
    if "baseline" in f:
        del f["baseline"]
    g = f.create_group("baseline")
    for k, v in params.items():
        g.create_dataset(k, data=v)


def default_lr(optimizer: str) -> float:
    return 1e-3 if optimizer == "adam" else 0.1


def run_baseline(cfg: BaselineConfig, out: str | None = None, overwrite: bool = False,
                 on_epoch: Callable[[BaselineEpoch], None] | None = None) -> BaselineTrainer:
    """Train ``cfg``; with ``out`` write a run file (``/metrics`` as ``memsim train`` writes them;
    ``/network`` stays empty). Returns the trainer (``.params`` holds the final weights)."""
    from memsim.datasets import load_dataset

    cfg.validate()
    data = load_dataset(cfg.dataset, cfg.data_dir, cfg.train_limit or None, cfg.test_limit or None)
    trainer = BaselineTrainer(cfg, data)
    writer = None
    if out is not None:
        from memsim.h5io import RunWriter

        writer = RunWriter.create(out, cfg.to_dict(), cfg.seed, overwrite=overwrite)
        with writer.transaction() as f:
            f.attrs.update({"kind": "baseline", "model": cfg.model})
    status = "failed"
    try:
        for _ in range(cfg.epochs):
            r = trainer.epoch()
            if writer is not None:
                with writer.transaction() as f:  # atomic, as for analog runs
                    writer.append_metrics(f, r.row())
                    f.attrs["epochs_done"] = int(r.epoch)
            if on_epoch is not None:
                on_epoch(r)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if writer is not None:
            if status == "complete":
                with writer.transaction() as f:
                    _write_params(f, trainer.params)
            writer.set_status(status)
    return trainer


def network_sizes(cfg: BaselineConfig, n_features: int, n_classes: int) -> str:
    """``784-100-10`` style size string of a baseline model."""
    if cfg.model == "logreg":
        return f"{n_features}-{n_classes}"
    if cfg.model == "mlp":
        return f"{n_features}-{cfg.hidden}-{n_classes}"
    return f"{2 * n_features}-{cfg.hidden}-{2 * n_classes}"
