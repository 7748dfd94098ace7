"""The project's own builders: `make reports` (build_reports) and `make bench` (selfbench and its sections).

The product never imports this package; it may import any other.
"""
