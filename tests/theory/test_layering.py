"""`theory` is symbolic: importing any of its modules must not import torch."""
import subprocess
import sys
from pathlib import Path

import pytest

THEORY = Path(__file__).resolve().parents[2] / "theory"
MODULES = sorted(f"momentumlab.theory.{p.stem}" for p in THEORY.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", MODULES)
def test_theory_module_does_not_import_torch_or_empirics(module):
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('momentumlab.empirics')]; "
            "sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, f"{module} pulled in torch/empirics\n{done.stderr[-2000:]}"
