# Entry points: `make demo` (the main job on a simulated fleet) and `make test` (what CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
FLEET_DIR ?= .fleet/demo
DEMO_HOSTS ?= xavier=1,nano=1,tx2=1

APT_PACKAGES := openssh-server openssh-client rsync iproute2 util-linux mount e2fsprogs \
	gcc libc6-dev make procps python3 python3-venv nftables

.PHONY: system-deps venv lint test demo doctor sample bench bench-quick wheelhouse constraints clean

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
	$(VPY) tools/controller_path.py
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/yamllint -s .
	@# ansible-lint warns ("PATH altered") unless its own bin dir is on PATH.
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/ansible-lint --profile production
	$(VENV)/bin/ruff check .
	@# Everything that runs on a device: the builder and the modules (JetPack 4: Python 3.6);
	@# the roles' `python -c` snippets: tests/unit/test_device_python.py.
	$(VENV)/bin/vermin --target=3.6- --no-tips --violations --eval-annotations builder/ \
	  library/ module_utils/
	@# The controller package, with the settings of pyproject.toml's [tool.mypy].
	$(VENV)/bin/mypy

# pytest exits 5 when it collected no test: that must fail loudly, never pass.
# The sample graph too: the simulated fleet's variables default to its catalog (doctor tests).
test: system-deps lint sample
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VPY) -m pytest -q; rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# The role builds the wheelhouse itself when needed; this target only prefetches it.
PIN_SET ?= simulated-cp311
wheelhouse: venv
	$(VPY) tools/wheelhouse.py --pin-set $(PIN_SET)

# The sample graph of models/sample.yml (models/sample/, git-ignored): real TensorFlow, ~20 s.
SAMPLE_GRAPH := models/sample/ssd_mobilenet_v2_coco/frozen_inference_graph.pb
sample: $(SAMPLE_GRAPH)
$(SAMPLE_GRAPH): tests/graphs/make_ssd_graphs.py tests/graphs/ssd_graph_builder.py | venv
	$(VPY) tests/graphs/make_ssd_graphs.py models/sample --variant ssd_mobilenet_v2_coco

# Is the controller and the inventory ready for a real run? One line per host and problem.
INVENTORY ?= inventory/jetsons
doctor: venv
	$(VPY) tools/doctor.py -i $(INVENTORY)

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
