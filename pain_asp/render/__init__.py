"""Every output format: check results (text, JSON, JSON Lines, CSV), the HTML report, and the
text of explain, fix, code and remit."""
