# Two commands on a fresh machine: `make demo` and `make test`. Everything they need is set up here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)

.PHONY: demo test lint typecheck layers unit bench soak clean install browser sandbox-tools lock lockcheck doctor

# Installs exactly the locked set (hash-checked, no resolver), then our own package without
# its dependencies and without an isolated build env, so nothing unpinned enters the venv.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	@# setuptools warns that folders named like our packages sit in the working directory: they are ours.
	PYTHONWARNINGS="ignore::UserWarning:setuptools.command.editable_wheel" \
		$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Regenerates the lock from pyproject.toml's ranges (runtime + dev + ray extras: the lock is the
# dev/test environment, and the Ray executor's tests run on real Ray). `pip install .` alone
# does not pull Ray; `pip install '.[ray]'` does. Review the diff.
lock:
	test -x $(BIN)/pip-compile || $(MAKE) install
	$(BIN)/pip-compile --quiet --extra dev --extra ray --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		-o $(LOCK) pyproject.toml

# The venv holds what the lock names, nothing more and nothing else.
lockcheck: $(STAMP)
	$(BIN)/python .ci/lockcheck.py $(LOCK)

install: $(STAMP)

demo: $(STAMP) sandbox-tools
	$(BIN)/python examples/demo.py

# What this machine has for mc (git, bubblewrap and a real sandbox run, ssh-keygen, gpg, ...).
doctor: $(STAMP)
	$(BIN)/mc doctor

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest

# Browser tests need Debian's Chromium; install it when we can (root + apt), and say so loudly
# when we cannot (the browser tests then skip with the same message).
browser:
	@if command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "!!! WARNING: could not install chromium: browser tests will be SKIPPED !!!"; \
	else \
		echo "!!! WARNING: chromium missing and cannot be installed here: browser tests will be SKIPPED !!!"; \
	fi

# Every agent run is sandboxed with bubblewrap (Debian `bubblewrap`); install it the way the
# browser target installs Chromium (root + apt), and say so loudly when we cannot: runs then
# fail with the install hint (or opt out with `sandbox: none`). `mc doctor` shows the result.
sandbox-tools:
	@if command -v bwrap >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's bubblewrap for the per-run agent sandbox"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
		|| echo "!!! WARNING: could not install bubblewrap: sandboxed agent runs will FAIL (apt-get install bubblewrap) !!!"; \
	else \
		echo "!!! WARNING: bubblewrap (bwrap) missing and cannot be installed here: sandboxed agent runs will FAIL; install it with \`apt-get install bubblewrap\` !!!"; \
	fi

test: lockcheck lint typecheck layers browser sandbox-tools unit

bench: $(STAMP)
	$(BIN)/python bench/plan_scale.py

# Chaos: `mc serve` SIGKILLed at 30 seeded moments during 200 tasks, then audited (exit 1 when a
# target-0 number is not 0). SOAK_ARGS="--seed 2 --json" passes options; a small version runs
# in `make test` (tests/chaos/).
soak: $(STAMP)
	$(BIN)/python bench/chaos.py --tasks 200 --kills 30 $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
