"""The HTML report's layout: the composed config is folded away, not most of the page."""

from __future__ import annotations

import re

from cryptotrade.evaluation.report import html_report


def test_config_is_folded_under_its_heading_and_escaped():
    config = "".join(f"key_{i}: <{i}>\n" for i in range(300))  # a composed config's length
    page = html_report(
        title="t", columns={"agent": {"total_return": 0.1}}, extra={}, pictures={},
        config_yaml=config, notes=[],
    )  # fmt: skip
    folded = re.search(
        r"<details><summary>(.*?)</summary>\s*<pre>(.*?)</pre></details>", page, re.S
    )
    assert folded, "the config sits in a closed <details> (no 'open' attribute)"
    assert folded.group(1) == "The run's composed config (300 lines)"
    assert "key_299: &lt;299&gt;" in folded.group(2) and "<299>" not in page
    # everything else comes before it
    assert page.index("Metrics: agent vs baselines") < page.index("<details>")
