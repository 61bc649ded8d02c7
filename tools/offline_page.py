"""Sphinx extension: every page works offline and without errors in the reader's browser.

MathJax is already served from the site itself (``sphinx-mathjax-offline``). Three things
of the theme and of the figures are not, and ``tests/test_browser.py`` checks each:

* ``sphinx-thebe`` 0.3.1 registers its inline configuration script twice under Sphinx 7,
  so every page declares ``const THEBE_JS_URL`` twice: a JavaScript ``SyntaxError``. This
  hook drops repeated scripts from each page.
* The kernel-free slider (matplotlib's ``to_jshtml`` player, see
  :func:`mini_adv.plotting.slider`) links Font Awesome 4 from a CDN: a failed request
  offline. The theme's own Font Awesome (served locally) draws the player's icons, so the
  link is removed from the pages' HTML outputs.
* The pydata theme logs a console error on a reader's first visit when no default colour
  mode (``html_context["default_mode"]``) is set; this sets ``auto`` (follow the reader's
  system setting), which is what the theme falls back to anyway.
"""

import re

from docutils import nodes

# The <link> to Font Awesome 4 on a CDN that matplotlib's jshtml template starts with.
_CDN_FONT_AWESOME = re.compile(r'<link[^>]*href="https?://[^"]*font-awesome[^"]*"[^>]*>\s*')


def _drop_cdn_font_awesome(app, doctree, docname):
    for node in doctree.findall(nodes.raw):
        if "html" in node.get("format", "").split() and _CDN_FONT_AWESOME.search(node.astext()):
            text = _CDN_FONT_AWESOME.sub("", node.astext())
            node.replace(node.children[0], nodes.Text(text))


def _page_context(app, pagename, templatename, context, doctree):
    context.setdefault("default_mode", "auto")  # pydata theme's html_context setting
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    app.connect("doctree-resolved", _drop_cdn_font_awesome)
    app.connect("html-page-context", _page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
