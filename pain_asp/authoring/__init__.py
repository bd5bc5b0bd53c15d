"""Tools for the people who write rules and payer policies: rule scaffolding, lint and
tests, case files, the knowledge-base consistency check, profiling and the generated docs."""
