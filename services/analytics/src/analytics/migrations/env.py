from analytics.adapters.orm import metadata
from eventing.migrations import run_env

run_env(metadata)
