"""Benchmarks (``make bench``): the system's rates and latencies beside the machine's own limits."""

import os

# The benchmarks run the system on stacks of this machine, in development (deploy/local/stack.sh
# sets the same for the services), and mint staff tokens with the development secret.
os.environ.setdefault("AUTH_ENVIRONMENT", "development")
