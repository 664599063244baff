"""Running ngspice on a netlist: the operating point as node voltages by name.

:func:`run_op` runs ``ngspice -b`` in a temporary directory. Whatever ``.control`` block the
netlist has is replaced by one that runs ``op`` and writes an ASCII rawfile (full double
precision), which is parsed into ``{node name (lower case): volts}``. The binary is ``ngspice`` on
the ``PATH`` or the one named by the environment variable ``MEMSIM_NGSPICE``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from memsim.netlist import control_block

_RAW = "op.raw"
_CONTROL_RE = re.compile(r"^[ \t]*\.control\b.*?^[ \t]*\.endc\b[^\n]*\n?", re.IGNORECASE | re.MULTILINE | re.DOTALL)
_END_RE = re.compile(r"^[ \t]*\.end[ \t]*$", re.IGNORECASE | re.MULTILINE)


def ngspice_binary() -> str | None:
    """Path of the ngspice executable, or None."""
    env = os.environ.get("MEMSIM_NGSPICE")
    if env:
        return env if (os.path.isfile(env) and os.access(env, os.X_OK)) else shutil.which(env)
    return shutil.which("ngspice")


def ngspice_available() -> bool:
    """True when an ngspice executable can be found (``MEMSIM_NGSPICE`` or ``PATH``)."""
    return ngspice_binary() is not None


def strip_control(netlist: str) -> str:
    """The netlist without its ``.control`` block and ``.end`` line (ending in a newline)."""
    text = _CONTROL_RE.sub("", netlist.replace("\r\n", "\n"))
    ends = list(_END_RE.finditer(text))
    body = text[: ends[-1].start()] if ends else text
    return body if body.endswith("\n") else body + "\n"


def _prepare(netlist: str) -> str:
    """The netlist with its ``.control`` block (if any) replaced by ours, before ``.end``."""
    return strip_control(netlist) + control_block(_RAW) + "\n.end\n"


def raw_variables(lines: list[str]) -> tuple[list[str], list[str], int, int]:
    """Header of an ngspice ASCII rawfile: variable names and kinds (lower case), the index of the
    ``Values:`` line and the number of points."""
    try:
        nvar = next(int(ln.split(":", 1)[1]) for ln in lines if ln.lower().startswith("no. variables:"))
        npts = next((int(ln.split(":", 1)[1].split()[0]) for ln in lines if ln.lower().startswith("no. points:")), 1)
        i_var = next(i for i, ln in enumerate(lines) if ln.strip().lower() == "variables:")
        i_val = next(i for i, ln in enumerate(lines) if ln.strip().lower() == "values:")
    except (StopIteration, ValueError):
        raise RuntimeError("ngspice rawfile: header not understood") from None
    names, kinds = [], []
    for ln in lines[i_var + 1: i_var + 1 + nvar]:
        parts = ln.split()
        names.append(parts[1].lower())
        kinds.append(parts[2].lower() if len(parts) > 2 else "")
    return names, kinds, i_val, npts


def node_name(variable: str) -> str:
    """``v(name)`` -> ``name``."""
    return variable[2:-1] if variable.startswith("v(") and variable.endswith(")") else variable


def run_ngspice(deck: str, raw_name: str, timeout: float, what: str) -> str:
    """Run ``ngspice -b`` on a complete ``deck`` (its ``.control`` block writes ``raw_name``) in a
    temporary directory, with HOME there so a user's ``~/.spiceinit`` stays out; return the rawfile
    text. Raises :class:`RuntimeError` with ngspice's messages on any failure."""
    exe = ngspice_binary()
    if exe is None:
        raise RuntimeError("ngspice not found: install it (Debian/Ubuntu: apt-get install ngspice) "
                           "or set MEMSIM_NGSPICE to its path")
    with tempfile.TemporaryDirectory(prefix="memsim-ngspice-") as tmp:
        cir = Path(tmp) / "circuit.cir"
        cir.write_text(deck)
        env = dict(os.environ, HOME=tmp)
        try:
            proc = subprocess.run([exe, "-b", cir.name], cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"ngspice did not finish the {what} within {timeout:g} s") from None
        raw = Path(tmp) / raw_name
        if proc.returncode != 0 or not raw.is_file():
            why = f"exit status {proc.returncode}" if proc.returncode != 0 else f"no {what} written"
            raise RuntimeError(f"ngspice {what} failed ({why}):\n{_ngspice_messages(proc.stdout, proc.stderr)}")
        return raw.read_text()


def parse_raw(text: str) -> dict[str, float]:
    """Node voltages from an ngspice ASCII rawfile of an operating point (first plot)."""
    lines = text.splitlines()
    names, kinds, i_val, _ = raw_variables(lines)
    nvar = len(names)
    values: list[float] = []
    for ln in lines[i_val + 1:]:
        parts = ln.split()
        if not parts:
            continue
        values.append(float(parts[-1]))  # the first value of a point carries its index
        if len(values) == nvar:
            break
    if len(values) != nvar:
        raise RuntimeError(f"ngspice rawfile: {len(values)} values for {nvar} variables")
    out: dict[str, float] = {}
    for name, kind, v in zip(names, kinds, values):
        if kind == "voltage":
            out[node_name(name)] = v
    return out


def _ngspice_messages(stdout: str, stderr: str, limit: int = 20) -> str:
    keep = []
    for ln in (stderr + "\n" + stdout).splitlines():
        s = ln.strip()
        if not s or s.startswith("Note: No compatibility mode") or s in keep:
            continue
        if re.search(r"^Trying (gmin|source)|Further gmin increment", s):  # homotopy progress
            continue
        if re.search(r"error|warning|singular|abort|fail|not converge|too small|unknown|cannot|can't", s, re.I):
            keep.append(s)
    if not keep:
        keep = [ln for ln in (stderr + "\n" + stdout).splitlines() if ln.strip()][-limit:]
    return "\n".join(keep[:limit])


def run_op(netlist: str, timeout: float = 600) -> dict[str, float]:
    """Operating point (``.op``) of ``netlist`` by ngspice: ``{node name (lower case): volts}``.

    Includes every node of the circuit (sources' nodes and internal nodes such as a diode's
    series-resistance node, ``name#...``). Raises :class:`RuntimeError` with ngspice's messages
    when ngspice is missing, fails, times out or produces no operating point.
    """
    text = run_ngspice(_prepare(netlist), _RAW, timeout, "operating point")
    if "operating point" not in text.lower():
        raise RuntimeError("ngspice wrote no operating point")
    volts = parse_raw(text)
    if not volts:
        raise RuntimeError("ngspice returned no node voltages")
    return volts
