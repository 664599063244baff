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


def _prepare(netlist: str) -> str:
    """The netlist with its ``.control`` block (if any) replaced by ours, before ``.end``."""
    text = _CONTROL_RE.sub("", netlist.replace("\r\n", "\n"))
    ends = list(_END_RE.finditer(text))
    body = text[: ends[-1].start()] if ends else text
    if not body.endswith("\n"):
        body += "\n"
    return body + control_block(_RAW) + "\n.end\n"


def parse_raw(text: str) -> dict[str, float]:
    """Node voltages from an ngspice ASCII rawfile of an operating point (first plot)."""
    lines = text.splitlines()
    try:
        nvar = next(int(ln.split(":", 1)[1]) for ln in lines if ln.lower().startswith("no. variables:"))
        i_var = next(i for i, ln in enumerate(lines) if ln.strip().lower() == "variables:")
        i_val = next(i for i, ln in enumerate(lines) if ln.strip().lower() == "values:")
    except (StopIteration, ValueError):
        raise RuntimeError("ngspice rawfile: header not understood") from None
    names, kinds = [], []
    for ln in lines[i_var + 1: i_var + 1 + nvar]:
        parts = ln.split()
        names.append(parts[1].lower())
        kinds.append(parts[2].lower() if len(parts) > 2 else "")
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
        if kind != "voltage":
            continue
        if name.startswith("v(") and name.endswith(")"):
            name = name[2:-1]
        out[name] = v
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
    exe = ngspice_binary()
    if exe is None:
        raise RuntimeError("ngspice not found: install it (Debian/Ubuntu: apt-get install ngspice) "
                           "or set MEMSIM_NGSPICE to its path")
    with tempfile.TemporaryDirectory(prefix="memsim-ngspice-") as tmp:
        tmp_path = Path(tmp)
        cir = tmp_path / "circuit.cir"
        cir.write_text(_prepare(netlist))
        env = dict(os.environ, HOME=tmp)  # keep a user's ~/.spiceinit out of the comparison
        try:
            proc = subprocess.run([exe, "-b", str(cir.name)], cwd=tmp, env=env, capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"ngspice did not finish the operating point within {timeout:g} s") from None
        raw = tmp_path / _RAW
        if proc.returncode != 0 or not raw.is_file():
            why = f"exit status {proc.returncode}" if proc.returncode != 0 else "no operating point written"
            raise RuntimeError(f"ngspice failed ({why}):\n{_ngspice_messages(proc.stdout, proc.stderr)}")
        text = raw.read_text()
    if "operating point" not in text.lower():
        raise RuntimeError(f"ngspice wrote no operating point:\n{_ngspice_messages(proc.stdout, proc.stderr)}")
    volts = parse_raw(text)
    if not volts:
        raise RuntimeError(f"ngspice returned no node voltages:\n{_ngspice_messages(proc.stdout, proc.stderr)}")
    return volts
