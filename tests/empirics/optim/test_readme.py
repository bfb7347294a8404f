"""The README's optimizer examples run (one per optimizer)."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[3] / "README.md"


def _blocks():
    text = README.read_text()
    start, end = text.index("<!-- section:optimizers -->"), text.index("<!-- /section:optimizers -->")
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_every_optimizer_has_an_example():
    code = "\n".join(_blocks())
    for name in ("VRAdam", "AdamP", "SGDP", "TAM", "AdaTAM"):
        assert re.search(rf"\b{name}\(", code), name


@pytest.mark.parametrize("index", range(3))
def test_readme_example_runs(index, capsys):
    exec(compile(_blocks()[index], f"README optimizers example {index}", "exec"), {})
