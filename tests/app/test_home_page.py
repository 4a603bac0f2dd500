"""AppTest for pages/home.py: the four strategies with formulas, the split, and where to go next."""

from __future__ import annotations


def test_home_explains_the_four_strategies(app):
    headings = [m.value for m in app.markdown if m.value.startswith("####")]
    for name in ("Independent seeds", "Gaussian-NLL members", "Snapshot ensembles", "Bootstrapping"):
        assert any(name in h for h in headings), name
    latex = [x.value for x in app.latex]
    assert len(latex) >= 5
    assert any("aleatoric" in x and "epistemic" in x for x in latex)
    assert any(r"\cos" in x for x in latex)  # the snapshot schedule
    assert not app.exception and not app.error


def test_home_links_to_the_next_pages(app):
    links = {(el.proto.label, el.proto.page) for el in app.get("page_link")}
    labels = {label for label, _ in links}
    assert {"Go to Data", "Go to Train", "Go to Uncertainty"} <= labels
    assert any(page.endswith("train") or "train" in page for _, page in links)
