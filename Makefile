# Mario's Pizzeria — the two commands that matter are `make run` and `make test`.
# Both install what is missing (PostgreSQL, Java, Maven, uv, the Python environment, the Kafka jars).

STACK := deploy/local/stack.sh
UV := uv run --frozen
# `make run BROKERS=3` / `make up BROKERS=3`: a three-broker Kafka cluster (one broker if unset).
STACK_ENV := $(if $(BROKERS),KAFKA_BROKERS=$(BROKERS))

.PHONY: help install python-env run up down status test test-unit lint format schemas bench consumer-drain profile chaos chaos-cluster sustained reconcile

help:
	@echo "make run       the whole system in the foreground (Ctrl-C stops everything)"
	@echo "make up        the same in the background; writes .local/stack/stack.env"
	@echo "               (BROKERS=3 with either: a three-broker Kafka cluster)"
	@echo "make down      stop everything started by make up"
	@echo "make status    what is running"
	@echo "make test      the whole suite against real Kafka and PostgreSQL"
	@echo "make test-unit the unit tests only, with no infrastructure"
	@echo "make lint      ruff and mypy (strict, over the code, tests and bench)"
	@echo "make format    ruff format and safe fixes"
	@echo "make schemas   regenerate docs/ (JSON Schemas, AsyncAPI) from the event catalogue"
	@echo "make bench     benchmarks beside the machine's ceilings -> bench/results, docs/performance.md"
	@echo "make consumer-drain  events/s, CPU and memory of each consumer, 1 and 2 processes -> bench/results/consumer-drain.json"
	@echo "make profile   flame graphs of every process at 10 orders/s -> docs/perf/"
	@echo "make chaos     faults while orders flow, each reconciled, on one broker, then on three"
	@echo "               -> bench/results/chaos.json, chaos-cluster.json"
	@echo "make chaos-cluster  the three-broker scenarios alone -> bench/results/chaos-cluster.json"
	@echo "make sustained 10 minutes at 100 orders/s, reconciled, memory sampled"
	@echo "make reconcile check the last hour of the make up stack: nothing lost, nothing doubled"

install:
	@bash $(STACK) install

# uv and the Python environment only: what lint and the unit tests need.
python-env:
	@bash $(STACK) python-env

run:
	@$(STACK_ENV) bash $(STACK) run

up:
	@$(STACK_ENV) bash $(STACK) up

down:
	@bash $(STACK) down

status:
	@bash $(STACK) status

test: install
	$(UV) pytest

test-unit: python-env
	$(UV) pytest tests/unit

lint: python-env
	$(UV) ruff check .
	$(UV) ruff format --check .
	$(UV) mypy

format:
	$(UV) ruff check --fix .
	$(UV) ruff format .

schemas:
	$(UV) pizzeria schemas generate

# Not part of `make test`: each runs on its own stack (.local/bench-stack), minutes long.
bench: install
	$(UV) python -m bench.run

consumer-drain: install
	$(UV) python -m bench.consumer_drain

profile: install
	$(UV) python -m bench.profile

# Both suites: the one-broker faults through the fault proxy, then the three-broker cluster's.
chaos: install
	$(UV) python -m bench.chaos
	$(UV) python -m bench.chaos --cluster

chaos-cluster: install
	$(UV) python -m bench.chaos --cluster

sustained: install
	$(UV) python -m bench.sustained

reconcile:
	@. .local/stack/stack.env && $(UV) python -m tests.support.reconcile
