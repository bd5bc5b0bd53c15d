"""Every output format of a checked claim: text, JSON, JSON Lines and CSV (results) and the
HTML report."""
