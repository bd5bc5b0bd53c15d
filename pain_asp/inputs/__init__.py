"""Everything that reads: claim files (JSON, YAML, JSON Lines, X12 837P), encounters and
free-text descriptions, 835 remittances and CMS's reference files."""
