"""Sphinx extension: let autodoc show mini_adv's Unicode-maths docstrings verbatim.

The package's docstrings write formulas as plain text (|f(x)|/‖∇f(x)‖, ...), readable in
``help()`` and in Colab. In reStructuredText, ``|text|`` is a substitution reference, so
this hook escapes every ``|`` before autodoc parses the docstring.
"""


def _escape_bars(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        lines[i] = line.replace("|", r"\|")


def setup(app):
    app.connect("autodoc-process-docstring", _escape_bars)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
