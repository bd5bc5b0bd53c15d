"""The claim generator and the benchmarks; nothing at run time imports this package."""
