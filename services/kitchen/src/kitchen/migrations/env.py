from eventing.migrations import run_env
from kitchen.adapters.orm import metadata

run_env(metadata)
