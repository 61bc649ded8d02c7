"""Sphinx extension: the provenance tag that ends a box's title is drawn as a small badge.

Every theorem, lemma, proposition and corollary box of the book ends its title with one of
``[paper]``, ``[standard]``, ``[heuristic]``, ``[reconstruction]`` (defined on the notation page,
section "Where each statement comes from"; ``tests/test_provenance.py`` checks the sources).
The tags stay literal text in the notebooks. At write time this post-transform finds the tag at
the end of such a box's title and wraps it in ``<span class="provenance provenance-<tag>">``,
which ``book/_static/provenance.css`` draws as a badge. A title without a tag is left as it is.
"""

from __future__ import annotations

import pathlib
import re

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

TAGS = ("paper", "standard", "heuristic", "reconstruction")
TAGGED_NODES = ("theorem_node", "lemma_node", "proposition_node", "corollary_node")
# The title text ends with the tag, then the ")" of sphinx-proof's " (%t)" title format.
_TRAILING_TAG = re.compile(r"^(?P<before>.*?)\s*\[(?P<tag>" + "|".join(TAGS) + r")\](?P<after>\)?\s*)$", re.S)
STATIC = pathlib.Path(__file__).resolve().parent.parent / "_static"


def badge_title(title: nodes.title) -> str | None:
    """Wrap the provenance tag that ends ``title`` in a badge node, in place; return the tag, or None."""
    texts = list(title.findall(nodes.Text))
    if not texts:
        return None
    # The parser may split "... [paper])" into several adjacent Text nodes: join the run of Text
    # siblings that ends with the title's last Text node.
    last = texts[-1]
    parent = last.parent
    end = parent.index(last)
    start = end
    while start > 0 and isinstance(parent[start - 1], nodes.Text):
        start -= 1
    m = _TRAILING_TAG.match("".join(str(t) for t in parent.children[start:end + 1]))
    if m is None:
        return None
    tag = m["tag"]
    badge = nodes.inline(tag, tag, classes=["provenance", f"provenance-{tag}"])
    new = [nodes.Text(m["before"] + " "), badge] + ([nodes.Text(m["after"])] if m["after"] else [])
    for node in parent.children[start:end + 1]:
        parent.remove(node)
    for offset, node in enumerate(new):
        parent.insert(start + offset, node)
    return tag


class ProvenanceBadges(SphinxPostTransform):
    default_priority = 900

    def run(self, **kwargs) -> None:
        for box in self.document.findall(nodes.Admonition):
            if type(box).__name__ in TAGGED_NODES and box.children and isinstance(box[0], nodes.title):
                badge_title(box[0])


def _static_path(app) -> None:
    if str(STATIC) not in app.config.html_static_path:
        app.config.html_static_path.append(str(STATIC))


def setup(app):
    app.add_post_transform(ProvenanceBadges)
    app.connect("builder-inited", _static_path)
    app.add_css_file("provenance.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
