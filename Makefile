# The two commands a newcomer needs: `make run` and `make test`. Everything they install lives here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install lint bench bench-city bench-federation demo-data sdl clean postgis

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## Serve the gateway on 127.0.0.1:8000 with the embedded defaults (demo data generated if missing).
run: install
	$(BIN)/citygraph demo-data --if-missing
	$(BIN)/citygraph serve

## PostGIS for the spatial connector's PostgreSQL backend (tests and benchmark): Debian's package,
## installed when missing (needs root, as in CI); the package lists are refreshed only if that fails.
POSTGIS_PACKAGE ?= postgresql-15-postgis-3
postgis:
	@[ -f /usr/share/postgresql/15/extension/postgis.control ] \
		|| apt-get install -y --no-install-recommends $(POSTGIS_PACKAGE) \
		|| (apt-get update && apt-get install -y --no-install-recommends $(POSTGIS_PACKAGE))

## Lint, type-check and run every test (Python and Rego).
test: install lint postgis
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo-data: install
	$(BIN)/citygraph demo-data

sdl: install
	$(BIN)/citygraph sdl

## The benchmark (not a test): CityGraph and the Node peers (bench/peers, installed here with
## npm ci when missing or stale) on the large data set; writes bench/RESULTS.md. Needs Node 20+,
## and wrk for the load (apt-get install wrk; without it the benchmark falls back to httpx).
## Pass options with BENCH_ARGS="--seconds 5 --concurrency 8".
bench: install postgis
	@[ bench/peers/node_modules/.package-lock.json -nt bench/peers/package-lock.json ] \
		|| npm ci --prefix bench/peers --no-audit --no-fund
	@command -v wrk >/dev/null || echo "wrk not found (apt-get install wrk): falling back to httpx"
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## The city-scale benchmark on PostgreSQL/PostGIS (bench/city.py; writes bench/CITY.md): ~1M credit
## records, 340,000 enterprises, 1.2M features, 10,000 cameras. The first run generates the data set
## (about half an hour) and loads it into the database citygraph_city; later runs reuse both.
bench-city: install postgis
	@command -v wrk >/dev/null || (echo "bench-city needs wrk (apt-get install wrk)" && exit 1)
	$(BIN)/python bench/city.py $(BENCH_ARGS)

## Dossier latency through Apollo Gateway and Hive Gateway in front of the subgraphs, beside the
## combined gateway (bench/federation.py; prints a Markdown table). Needs Node 20+.
bench-federation: install
	$(BIN)/python bench/federation.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
