"""Benchmarks (``make bench``): the system's rates and latencies beside the machine's own limits."""
