"""The words every part of pain-asp shares, each listed once: finding severities, claim
statuses, the confidence of a source, and the output formats of a check."""

from __future__ import annotations

__all__ = ["CONFIDENCE_LEVELS", "FORMATS", "SEVERITIES", "SEVERITY_RANK", "STATUSES"]

# Finding severities, most severe first (a rule's default; a payer may change it).
SEVERITIES = ("deny", "review", "warn", "info")
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}

# A claim's status, in the order summaries list them: the worst finding's severity, clean
# without findings, error when the claim could not be read or checked.
STATUSES = ("clean", "info", "warn", "review", "deny", "error")

# How well a rule's source is known (rule_source/5, a payer value's source).
CONFIDENCE_LEVELS = ("source_verified", "secondary", "unverified", "payer_policy")

# Output formats of check results.
FORMATS = ("text", "json", "jsonl", "csv")
