"""Test rigs: real peer processes (peers.py) and receiver test data (receiver.py).

Used by the tests and by the benchmarks (bench/ puts the repository root on sys.path);
not part of the installed product.
"""
