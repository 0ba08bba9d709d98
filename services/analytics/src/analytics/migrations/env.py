from eventing.migrations import run_env

from analytics.adapters.orm import metadata

run_env(metadata)
