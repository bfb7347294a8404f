"""MkDocs hook: the docstrings use Sphinx roles (``:func:`name```); mkdocstrings renders the
name as code but leaves the role's prefix as text.  Drop the prefix."""
import re

ROLE = re.compile(r":(?:class|func|mod|data|attr|meth|exc|obj):(?=<code)")


def on_page_content(html, **kwargs):
    return ROLE.sub("", html)
