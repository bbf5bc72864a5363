# Two commands work on a fresh machine with Python 3.11+ and make: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
# Runs a command holding an exclusive lock on a file, which the kernel releases when the command
# ends, however it ends. Python's fcntl: no flock binary can be assumed.
LOCKED := $(PYTHON) -c 'import fcntl, subprocess, sys; lock = open(sys.argv[1], "a"); fcntl.flock(lock, fcntl.LOCK_EX); sys.exit(subprocess.call(sys.argv[2:]))'

.PHONY: install test demo lint format gateway bench clean

install: $(STAMP)

# Reinstall only when the project's dependency files change. Makes started together (`make demo &
# make demo` on a fresh clone) all find the stamp stale: each takes the lock in turn and asks make
# again, so the first builds the venv and the others find it fresh, instead of all building it in
# the same directory at once.
ifndef INSTALL_LOCKED
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s); set PYTHON=python3.11" % sys.version.split()[0])'
	@mkdir -p $(VENV)
	@$(LOCKED) $(VENV)/.lock $(MAKE) --no-print-directory INSTALL_LOCKED=1 $(STAMP)
else
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)
endif

test: install
	$(PY) -m pytest -q

demo: install
	$(PY) examples/demo.py $(if $(KEEP),--keep)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Run a gateway on the simulator in the foreground, with a secret kept in var/secret, and
# markets open every day (var/gateway-sim.toml), so that the README's tour works on a Sunday.
gateway: install
	@mkdir -p var && test -s var/secret || $(PY) -c 'import secrets; print(secrets.token_hex(32))' > var/secret
	@chmod 600 var/secret
	@test -f var/gateway-sim.toml || printf '# make gateway: markets never close\n[sim]\nalways_open = true\n' > var/gateway-sim.toml
	$(PY) -m gtw_server --config var/gateway-sim.toml --data-dir var/gateway --secret-file var/secret

bench: install
	$(PY) -m bench --check --json var/bench.json

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
