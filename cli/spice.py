"""``memsim export-spice`` and ``memsim settle``: the same circuit for ngspice and for the emulator."""
from __future__ import annotations

import json
import time

import click
import numpy as np

from memsim.cli.errors import clean_errors, fail

PHASES = ("free", "nudge_plus", "nudge_minus")


def _sample(run, index: int, split: str, count: int = 1):
    """Features and labels of ``count`` samples from the run's dataset (``split`` set)."""
    from memsim.datasets import load_dataset

    cfg = run.config
    data = load_dataset(cfg.get("dataset", "digits"), cfg.get("data_dir"))
    x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
    if not 0 <= index < len(x):
        fail(f"--sample {index} is out of range: the {split} set has {len(x)} samples (0..{len(x) - 1})")
    if index + count > len(x):
        fail(f"--samples {count} from {index} runs past the {split} set's {len(x)} samples")
    return x[index:index + count], y[index:index + count]


def _nudge_targets(run, net, x, y) -> np.ndarray:
    """The nudge's differential targets (V) the run's cost gives samples ``x`` with labels ``y``:
    the scaled label for ``mse``; for ``xent``, set from the free equilibrium's outputs, as in training."""
    from memsim.circuit import input_voltages
    from memsim.cost import nudge_targets
    from memsim.energy import outputs
    from memsim.solve import input_drive, pack, solve

    cfg = run.config
    target = nudge_targets(cfg.get("loss", "mse"), y, net.spec.n_classes, cfg.get("target_amplitude", 1.0),
                           cfg.get("logit_scale", 0.1))
    if not callable(target):
        return target
    packed = pack(net)
    V = np.zeros((len(x), net.spec.n_free))
    solve(packed, input_drive(packed, input_voltages(net.spec, x)), V, tol=1e-12)
    return target(outputs(net, V))


def phase_beta(phase: str, beta: float) -> float:
    return {"free": 0.0, "nudge_plus": beta, "nudge_minus": -beta}[phase]


def common(fn):
    for o in reversed([
        click.argument("run_file", type=click.Path()),
        click.option("--sample", "index", type=int, default=0, show_default=True, help="Sample index."),
        click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True),
        click.option("--phase", type=click.Choice(PHASES), default="free", show_default=True),
        click.option("--beta", type=float, help="Nudge strength (S); default: the run's beta."),
    ]):
        fn = o(fn)
    return fn


@click.command("export-spice")
@common
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="Netlist file (default: stdout).")
@click.option("--tran", is_flag=True, help="A .tran netlist replaying the phase from the previous phase's state (uic).")
@click.option("--tstop", type=float, help="With --tran: stop time (s); default twice the phase's settling time.")
@click.option("--points", type=int, default=1000, show_default=True, help="With --tran: output points.")
@click.option("--capacitance", type=float, help="With --tran: node capacitance (F); default the run's.")
@click.option("--diode", "diode_mode", type=click.Choice(["model", "shockley"]), default="model", show_default=True,
              help="ngspice's diode model, or memsim's exact Shockley law as a behavioural source.")
@clean_errors
def export_spice(run_file, index, split, phase, beta, out, tran, tstop, points, capacitance, diode_mode):
    """Write the ngspice netlist (.op, or .tran with --tran) of a run's network for one sample and phase."""
    from memsim.h5io import open_run
    from memsim.netlist import write_netlist

    run = open_run(run_file)
    net = run.network()
    x, y = _sample(run, index, split)
    b = run.config.get("beta", 1e-7) if beta is None else beta
    target = _nudge_targets(run, net, x, y)[0]
    title = f"memsim {run.path.name} sample {index} ({split}) phase {phase}"
    if tran:
        from memsim.tran_netlist import export_phase_tran

        if points < 2:
            fail("--points must be at least 2")
        if tstop is not None and not tstop > 0:
            fail("--tstop must be positive (seconds)")
        cap = run.config.get("capacitance", 1e-12) if capacitance is None else capacitance
        if not cap > 0:
            fail(f"--capacitance must be positive (farads), got {cap}")
        text = export_phase_tran(net, x[0], phase, b, target, capacitance=cap, tstop=tstop, points=points,
                                 title=title, diode=diode_mode)
    else:
        text = write_netlist(net, x[0], phase=phase, beta=b, target=target, title=title, diode=diode_mode)
    if out:
        with open(out, "w") as fh:
            fh.write(text)
        click.echo(f"memsim: wrote {out}", err=True)
    else:
        click.echo(text, nl=False)


@click.command()
@common
@click.option("--samples", "count", type=int, default=1, show_default=True,
              help="Solve this many consecutive samples at once and report the time per equilibrium.")
@click.option("--tol", type=float, default=1e-12, show_default=True, help="Solver tolerance (V).")
@click.option("--json", "as_json", is_flag=True, default=True, help="Print JSON (the default).")
@clean_errors
def settle(run_file, index, split, phase, beta, count, tol, as_json):
    """The emulator's node voltages for a sample and phase, keyed by the netlist's node names."""
    from memsim.circuit import input_voltages, node_names
    from memsim.energy import layer_sources
    from memsim.h5io import open_run
    from memsim.solve import input_drive, pack, solve

    if count < 1:
        fail("--samples must be at least 1")
    run = open_run(run_file)
    net = run.network()
    spec = net.spec
    x, y = _sample(run, index, split, count)
    b = phase_beta(phase, run.config.get("beta", 1e-7) if beta is None else beta)
    target = _nudge_targets(run, net, x, y)
    packed = pack(net)
    V = np.zeros((count, spec.n_free))
    solve(packed, input_drive(packed, input_voltages(spec, x[:1])), V[:1].copy(), b, target[:1], tol=tol)  # JIT warm-up
    t0 = time.perf_counter()
    v_in = input_voltages(spec, x)
    stats = solve(packed, input_drive(packed, v_in), V, b, target, tol=tol)
    dt = time.perf_counter() - t0
    names = node_names(spec)
    volts = dict(zip(names["inputs"], v_in[0].tolist()))
    volts.update(zip(names["free"], V[0].tolist()))
    src = layer_sources(net, V[:1])
    amp_names = iter(names["amplifier"])
    for l in range(spec.n_free_layers):
        if spec.has_amplifier(l):
            for val in src[l][0]:
                volts[next(amp_names)] = float(val)
    result = {
        "run": str(run.path), "sample": index, "split": split, "phase": phase, "beta": b,
        "node_voltages": volts,
        "timing": {"samples": count, "seconds_total": dt, "seconds_per_equilibrium": dt / count,
                   "sweeps_mean": float(stats.sweeps.mean()), "tolerance_V": tol},
    }
    click.echo(json.dumps(result, indent=1))
