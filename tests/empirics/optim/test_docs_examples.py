"""The optimizer guide's examples run (one per optimizer): the docs show code that works."""
import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guide" / "optimizers.md"


def _blocks():
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_every_optimizer_has_an_example():
    code = "\n".join(_blocks())
    for name in ("VRAdam", "AdamP", "SGDP", "TAM", "AdaTAM"):
        assert re.search(rf"\b{name}\(", code), name


@pytest.mark.parametrize("index", range(3))
def test_readme_example_runs(index, capsys):
    exec(compile(_blocks()[index], f"guide optimizers example {index}", "exec"), {})
