"""dashboard.charts: the Plotly config of every chart."""

from __future__ import annotations

import pytest

from dashboard.charts import image_config


def test_image_config_downloads_png_or_svg() -> None:
    assert image_config("svg", "bands")["toImageButtonOptions"] == {"format": "svg", "filename": "bands", "scale": 2.0}
    assert image_config("png", "x", 3.0)["toImageButtonOptions"]["scale"] == 3.0
    with pytest.raises(ValueError):
        image_config("gif")
