"""Benchmarks of the FER toolkit: ``python3 -m bench`` runs bench/throughput.py."""
