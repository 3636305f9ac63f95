# Entry points: `make demo` (the main job on a simulated fleet) and `make test` (what CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
FLEET_DIR ?= .fleet/demo
DEMO_HOSTS ?= xavier=1,nano=1,tx2=1

APT_PACKAGES := openssh-server openssh-client rsync iproute2 util-linux mount e2fsprogs \
	gcc libc6-dev make procps python3 python3-venv nftables

.PHONY: system-deps venv lint test demo bench bench-quick wheelhouse constraints clean

# Debian packages, installed only when one is missing (apt-get update is slow).
system-deps:
	@if [ "$$(id -u)" != 0 ]; then echo "system-deps: run as root (apt-get, namespaces, mounts)"; exit 1; fi
	@missing=$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The venv is rebuilt when the pinned requirements change.
$(VENV)/.installed: requirements/dev.txt requirements/controller.txt requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements/dev.txt -c requirements/constraints.txt
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/yamllint -s .
	$(VENV)/bin/ansible-lint --profile production
	$(VENV)/bin/ruff check .
	$(VENV)/bin/vermin --target=3.6- --no-tips --violations --eval-annotations builder/ \
	  library/engine_deploy.py module_utils/trt_deploy.py

# pytest exits 5 when it collected no test: that must fail loudly, never pass.
test: system-deps lint
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VPY) -m pytest -q; rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# The role builds the wheelhouse itself when needed; this target only prefetches it.
PIN_SET ?= simulated-cp311
wheelhouse: venv
	$(VPY) tools/wheelhouse.py --pin-set $(PIN_SET)

demo: system-deps venv
	$(VPY) tools/demo.py --fleet-dir $(FLEET_DIR) --hosts $(DEMO_HOSTS)

# The fleet benchmark (bench/README.md): tables and a chart under bench/results/.
bench: system-deps venv
	$(VPY) bench/run.py

bench-quick: system-deps venv
	$(VPY) bench/run.py --sizes 2 --quick

constraints: venv
	{ echo "# Full pinned closure of requirements/dev.txt (pip freeze). Regenerate with: make constraints"; \
	  $(VPY) -m pip freeze --exclude pip --exclude setuptools --exclude wheel; } > requirements/constraints.txt

clean:
	rm -rf $(VENV) .cache artifacts .fleet
