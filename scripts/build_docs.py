"""Build the documentation site: ``python scripts/build_docs.py [--serve] [--quick-notebooks]``.

1. stage ``docs/`` in ``build/docs``;
2. write a page per claim from the registry (statement and derivation steps as LaTeX from the
   sympy objects, assumptions, status and lemmas, what the check measures and its pass rule,
   resolution and negative controls, the latest recorded result from
   ``results/verify_quick.json``, and a figure), and the claims index;
3. execute the teaching notebooks at their small sizes (``QUICK = True`` injected after the
   cell tagged ``parameters``) and convert them, outputs included, to Markdown pages;
4. complete the nav of ``mkdocs.yml`` (generated pages, and any guide page not listed yet)
   and run ``mkdocs build --strict`` into ``build/site`` (``--serve``: ``mkdocs serve``).

Derivations come from :mod:`momentumlab.cache` and executed notebooks from
``build/notebooks`` (keyed by a hash of the notebook and of the package sources), so a second
build only re-renders.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
STAGE = BUILD / "docs"
SITE = BUILD / "site"
NB_CACHE = BUILD / "notebooks"
RESULTS = ROOT / "results" / "verify_quick.json"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
#: claim id prefix -> the notebook that shows its figures
TOPIC_NOTEBOOK = {"adamp": "01_norm_growth", "stability": "03_stability_regions",
                  "vradam": "04_vradam_eos", "eos": "04_vradam_eos",
                  "convergence": "05_convergence_bound"}
#: a derivation step's LaTeX longer than this is folded away (it is still on the page)
FOLD_CHARS = 1500


# ------------------------------------------------------------------ LaTeX helpers
def latex(expr) -> str:
    import sympy as sp

    try:
        return sp.latex(expr)
    except Exception:  # noqa: BLE001 - a non-sympy object: show its text
        return rf"\text{{{str(expr)}}}"


def clean_tex(tex: str) -> str:
    r"""KaTeX-safe: underscores inside ``\text{...}`` escaped."""
    return re.sub(r"\\text\{([^{}]*)\}", lambda m: r"\text{" + m.group(1).replace("_", r"\_")
                  .replace(r"\\_", r"\_") + "}", tex)


def display_math(tex: str) -> str:
    tex = clean_tex(tex)
    block = f"$$\n{tex}\n$$"
    if len(tex) > FOLD_CHARS:
        return f'??? note "the expression ({len(tex)} characters of LaTeX)"\n\n' + \
            "\n".join("    " + line for line in block.splitlines())
    return block


def md_text(text: str) -> str:
    """Plain text from the claim sources, safe in Markdown (no stray emphasis)."""
    return text.replace("*", r"\*").replace("_", r"\_") if "`" not in text else text


# ------------------------------------------------------------------ claim pages
def recorded_rows() -> tuple[dict, dict]:
    if not RESULTS.exists():
        return {}, {}
    report = json.loads(RESULTS.read_text())
    return report, {row["id"]: row for row in report["claims"]}


def _fmt(x) -> str:
    return "–" if x is None else (f"{x:.6g}" if isinstance(x, float) else str(x))


def claim_figure(claim, out: Path) -> str | None:
    """A figure for the claim's page, or None: stability claims get the explorer's heat map."""
    topic, _, name = claim.id.partition(".")
    if topic != "stability":
        return None
    from momentumlab.empirics.explore import plot_stability, stability_report
    from momentumlab.theory.stability import get_model

    model = get_model(name)
    report, sw = stability_report(name, model.y_default, grid=48, steps=400)
    fig = plot_stability(sw, report)
    fig.savefig(out, dpi=90)
    return out.name


def claim_page(claim, row: dict | None, report: dict) -> tuple[str, str | None]:
    """The Markdown page of one claim, and the file name of its figure (if any)."""
    d = claim.derive()
    lines = [f"# `{claim.id}`", "", f"**{md_text(claim.title)}**", "",
             f"*Source:* {md_text(claim.source)}", "", "## Statement", "",
             display_math(claim.statement), "", "## Assumptions", ""]
    lines += [f"- {md_text(a)}" for a in claim.assumptions] or ["(none)"]
    lines += ["", f"## Derivation — status: **{d.status}**", ""]
    if d.lemmas:
        lines += ["Textbook lemmas it leans on: " + ", ".join(d.lemmas) + ".", ""]
    marks = {"reduced": "✔ sympy reduced it to 0 / True", "lemma": "lemma",
             "stated": "stated, not reduced", "note": "note"}
    for k, step in enumerate(d.steps, 1):
        tag = marks[step.kind] + (f": {step.lemma}" if step.kind == "lemma" else "")
        lines += [f"{k}. *({tag})* {md_text(step.text)}", ""]
        if step.expr is not None:
            lines += ["    " + ln for ln in display_math(latex(step.expr)).splitlines()] + [""]
    if d.expression is not None:
        lines += ["**Closed form** (computed by the steps above):", "", display_math(latex(d.expression)), ""]
    lines += ["## The check", ""]
    if claim.quantities:
        lines += [f"*Columns:* {md_text(claim.quantities)}", ""]
    if claim.pass_rule:
        lines += [f"*Passes when:* {md_text(claim.pass_rule)}", ""]
    lines += [f"Run it: `momentumlab verify --only {claim.id}`; teaching view: "
              f"`momentumlab explain {claim.id}`.", ""]
    lines += ["## Latest recorded result", ""]
    if row is None:
        lines += ["Not recorded yet (`scripts/record_results.sh`).", ""]
    else:
        lines += [f"From `results/verify_quick.json` (momentumlab {report['momentumlab']}, "
                  f"`verify --quick`, device {report['device']}, seed {report['seed']}):", "",
                  "| verdict | predicted | measured | error | tolerance | resolution | controls rejected | seconds |",
                  "|---|---|---|---|---|---|---|---|",
                  f"| {row['status'].upper()} | {_fmt(row['predicted'])} | {_fmt(row['measured'])} | "
                  f"{_fmt(row['error'])} | {_fmt(row['tolerance'])} | {_fmt(row.get('resolution'))} | "
                  f"{sum(c['rejected'] for c in row.get('controls', []))}/{len(row.get('controls', []))} | "
                  f"{_fmt(row['seconds'])} |", ""]
        if row.get("controls"):
            lines += ["Negative controls (wrong predictions the check must reject):", ""]
            lines += [f"- {c['name']}: {'rejected' if c['rejected'] else '**accepted**'} "
                      f"(error {_fmt(c['error'])})" for c in row["controls"]]
            lines += [""]
        finding = row["details"].get("paper_claim") or row["details"].get("finding")
        if finding:
            lines += [f'!!! note "Finding"\n    {md_text(str(finding))}', ""]
        lines += ['??? info "details (JSON)"', "    ```json"]
        lines += ["    " + ln for ln in json.dumps(row["details"], indent=1).splitlines()]
        lines += ["    ```", ""]
    lines += ["## Figure", ""]
    figure = None
    try:
        figure = claim_figure(claim, STAGE / "claims" / f"{claim.id}.png")
    except Exception as exc:  # noqa: BLE001 - a figure that fails must not hide the page
        lines += [f"(the figure could not be drawn: {type(exc).__name__}: {exc})", ""]
    if figure:
        lines += [f"![{claim.id}: simulated stability region and the derived boundary]({figure})", ""]
    topic = claim.id.partition(".")[0]
    if topic in TOPIC_NOTEBOOK:
        nb = TOPIC_NOTEBOOK[topic]
        lines += [f"The teaching notebook [{nb}](../notebooks/{nb}.md) shows this topic's figures.", ""]
    return "\n".join(lines), figure


def write_claim_pages() -> list[str]:
    from momentumlab.cache import prime
    from momentumlab.empirics.checks import load_claims

    registry = load_claims()
    prime(registry.values())
    report, rows = recorded_rows()
    out = STAGE / "claims"
    out.mkdir(parents=True, exist_ok=True)
    index = ["# Claims", "",
             "One page per claim of the registry: statement, derivation (rendered from the sympy "
             "objects), check, latest recorded result and figure.  `momentumlab list` prints the "
             "same catalogue.", "",
             "| claim | title | symbolic | recorded verdict |", "|---|---|---|---|"]
    pages = []
    for claim in registry.values():
        text, _ = claim_page(claim, rows.get(claim.id), report)
        (out / f"{claim.id}.md").write_text(text)
        pages.append(f"claims/{claim.id}.md")
        verdict = rows[claim.id]["status"].upper() if claim.id in rows else "–"
        index.append(f"| [`{claim.id}`]({claim.id}.md) | {md_text(claim.title)} | "
                     f"{claim.derive().status} | {verdict} |")
    (out / "index.md").write_text("\n".join(index) + "\n")
    return pages


# ------------------------------------------------------------------ notebooks
def _sources_digest() -> str:
    from momentumlab.cache import source_key

    digest = hashlib.sha256(source_key().encode())
    for pkg in ("empirics", "theory"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def with_quick_parameters(nb):
    """Insert ``QUICK = True`` right after the cell tagged ``parameters`` (papermill's way)."""
    import nbformat

    idx = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    if idx is None:
        raise ValueError("notebook has no cell tagged 'parameters'")
    cell = nbformat.v4.new_code_cell("QUICK = True  # injected: small sizes")
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(idx + 1, cell)
    return nb


def execute_notebook(path: Path, timeout: int = 900):
    """The notebook at ``path`` executed at small sizes (cached in ``build/notebooks``)."""
    import fcntl  # POSIX: the docs build runs where the test suite does

    import jupytext
    import nbclient
    import nbformat

    key = hashlib.sha256(path.read_bytes() + _sources_digest().encode()).hexdigest()[:16]
    cached = NB_CACHE / f"{path.stem}-{key}.ipynb"
    NB_CACHE.mkdir(parents=True, exist_ok=True)
    # one execution per notebook even when several test workers ask at once
    with open(NB_CACHE / f".{path.stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cached.exists():
            return nbformat.read(cached, as_version=4)
        nb = with_quick_parameters(jupytext.read(path))
        with tempfile.TemporaryDirectory() as work:  # a notebook never writes into the repository
            nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": work}}).execute()
        for old in NB_CACHE.glob(f"{path.stem}-*.ipynb"):
            old.unlink(missing_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        nbformat.write(nb, tmp)
        os.replace(tmp, cached)
    return nb


def write_notebook_pages() -> list[str]:
    from nbconvert import MarkdownExporter

    out = STAGE / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    index = ["# Notebooks", "",
             "The teaching notebooks (jupytext sources in `notebooks/`), executed at their small "
             "sizes when this site was built, outputs included.  Open one with "
             "`pip install \".[notebooks]\"` and `jupyter lab notebooks/` (jupytext opens the `.py` "
             "files as notebooks).", ""]
    pages = []
    for path in NOTEBOOKS:
        nb = execute_notebook(path)
        body, resources = MarkdownExporter().from_notebook_node(
            nb, resources={"output_files_dir": f"{path.stem}_files", "unique_key": path.stem})
        for name, data in resources.get("outputs", {}).items():
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        source = f"*Source: `notebooks/{path.name}` (executed with `QUICK = True`).*\n\n"
        (out / f"{path.stem}.md").write_text(source + body)
        pages.append(f"notebooks/{path.stem}.md")
        title = next((ln.lstrip("# ").strip() for ln in body.splitlines() if ln.startswith("# ")),
                     path.stem)
        index.append(f"- [{title}]({path.stem}.md)")
    (out / "index.md").write_text("\n".join(index) + "\n")
    return pages


# ------------------------------------------------------------------ config and build
def write_config() -> Path:
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["docs_dir"] = str(STAGE)
    handler = config["plugins"][1]["mkdocstrings"]["handlers"]["python"]
    handler["paths"] = [str(BUILD / "pysrc")]
    config["hooks"] = [str(ROOT / "scripts" / "mkdocs_hooks.py")]
    config["site_dir"] = str(SITE)
    listed = set(re.findall(r"guide/[\w.-]+\.md", json.dumps(config["nav"])))
    extra = sorted(f"guide/{p.name}" for p in (STAGE / "guide").glob("*.md")
                   if f"guide/{p.name}" not in listed)
    for section in config["nav"]:
        if "User guide" in section:
            section["User guide"] += [{_title(STAGE / page): page} for page in extra]
        if "Claims" in section:
            section["Claims"] = "claims/index.md"
    path = BUILD / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def _title(page: Path) -> str:
    for line in page.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return page.stem


def stage() -> None:
    if STAGE.exists():
        shutil.rmtree(STAGE)
    shutil.copytree(ROOT / "docs", STAGE)
    # the package as a plain folder tree for mkdocstrings (theory/ and empirics/ install inside
    # momentumlab through package-dir, which a static source finder does not follow)
    tree = BUILD / "pysrc" / "momentumlab"
    if tree.parent.exists():
        shutil.rmtree(tree.parent)
    tree.mkdir(parents=True)
    for item in (ROOT / "src" / "momentumlab").iterdir():
        if item.suffix == ".py":
            (tree / item.name).symlink_to(item)
    (tree / "theory").symlink_to(ROOT / "theory", target_is_directory=True)
    (tree / "empirics").symlink_to(ROOT / "empirics", target_is_directory=True)


def build(serve: bool = False, notebooks: bool = True) -> Path:
    """Stage, generate, build; returns the site folder."""
    stage()
    write_claim_pages()
    if notebooks:
        write_notebook_pages()
    else:
        (STAGE / "notebooks").mkdir(exist_ok=True)
        (STAGE / "notebooks" / "index.md").write_text("# Notebooks\n\n(not built: --no-notebooks)\n")
    config = write_config()
    cmd = [sys.executable, "-m", "mkdocs", "serve" if serve else "build", "-f", str(config)]
    if not serve:
        cmd += ["--strict", "--quiet"]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)
    return SITE


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", action="store_true", help="serve the site with live reload")
    ap.add_argument("--no-notebooks", action="store_true", help="skip executing the notebooks")
    args = ap.parse_args(argv)
    site = build(serve=args.serve, notebooks=not args.no_notebooks)
    print(f"site: {site / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
