# semifreddo: partially frozen neural networks from QKeras to a PYNQ board.
#
#   make demo      set everything up (first run only), then train, convert and run the digits example
#   make test      the test suite
#   make test-quick  the suite without the tests that train, compile or solve (under 2 minutes)
#   make help      every target
#
# Variables: SPEC (a shipped spec name or a YAML path, default digits), BUILD (default build).

SHELL        := /bin/bash
PYTHON       ?= python3
VENV         ?= .venv
BIN          := $(VENV)/bin
SF           := $(BIN)/semifreddo
SPEC         ?= digits
BUILD        ?= build
SPEC_NAME    := $(basename $(notdir $(SPEC)))
SPEC_FILE    := $(if $(filter %.yaml %.yml,$(SPEC)),$(SPEC),models/specs/$(SPEC).yaml)
OUT          := $(BUILD)/$(SPEC_NAME)
PYTEST_ARGS  ?=

# Debian packages the tool chain needs on a fresh machine (installed by `make setup` when missing).
DEB_PACKAGES := g++ make tcl openssh-client openssh-server yosys

SETUP_STAMP  := $(VENV)/.semifreddo-setup

.PHONY: help setup demo pixels-demo test test-quick train tasks bench-accuracy clean distclean

help:
	@echo "semifreddo make targets"
	@echo "  setup            install Debian packages (when root) and the Python virtualenv $(VENV)"
	@echo "  demo             train the digits core and task weight sets, check them in C simulation, run them on the emulated board"
	@echo "  pixels-demo      the pixel network on whole 512x512 frames: C simulation, then PNG in/out on the emulated board"
	@echo "  test             run the test suite (pytest, both cores): every test"
	@echo "  test-quick       the suite less the tests that train models, compile C++ or solve adder graphs"
	@echo "                   (markers train, compile, solve; under 2 minutes on 2 cores): the loop while coding"
	@echo "  train            pre-train the frozen core of SPEC=$(SPEC)  -> $(OUT)/core.npz"
	@echo "  tasks            train every target task of SPEC          -> $(OUT)/weightsets/"
	@echo "  hls              convert SPEC's frozen core to a Vitis HLS project (hls4ml) -> $(OUT)/hls/"
	@echo "  csim             C-simulate every weight set of SPEC and check it bit-exact against QKeras"
	@echo "  bench-accuracy   quality vs frozen fraction for every shipped spec -> bench/results/"
	@echo "  bench-hls        convert+compile time and C-sim throughput vs plain hls4ml and QKeras"
	@echo "  boards           list the board table (BOARD=pynq-z2|zcu104|ultra96-v2|kv260|emulated)"
	@echo "  synth            Vitis HLS csim + csynth + IP export for SPEC on BOARD [COSIM=1]; refuses an IP"
	@echo "                   the estimate says does not fit BOARD, unless FORCE=1"
	@echo "  bitstream        Vivado block design + bitstream + .hwh for SPEC on BOARD [FORCE=1]"
	@echo "  package          deploy bundle for SPEC on BOARD -> $(BUILD)/<spec>/bundle-<board>/"
	@echo "  deploy           copy BUNDLE to BOARD_HOST over ssh and install it (see board_scripts/README.md)"
	@echo "  user-task        train task TASK of SPEC from your own data DATA (.npz or folder of class folders)"
	@echo "  add-task         add weight set WEIGHTS to BUNDLE [TASK=name] [REPLACE=1], no new bitstream"
	@echo "  deploy-weights   install only task WEIGHTS of BUNDLE into the overlay on BOARD_HOST"
	@echo "  board-demo       emulated board: package, run task A, switch to task B, run, compare with QKeras"
	@echo "  bench-frames     whole frames (SPEC=pixels: 512x512) through the emulated board vs QKeras, timed"
	@echo "  bench-runtime    task-switch cost (AXI-Lite words, bytes) vs a full bitstream reload per board;"
	@echo "                   frames/s of a stream alternating two tasks per frame, weight banks vs a reload per switch"
	@echo "  estimate         estimated LUT/FF/DSP/BRAM, latency, power of SPEC's IP and two baselines; with"
	@echo "                   BOARD=..., ends with whether it fits that board (exit 1 if not)"
	@echo "  explore          design-space sweep of SPEC (frozen fraction x bits x format) -> $(OUT)/explore/"
	@echo "  characterize     re-synthesize the unit blocks with Yosys and rewrite the unit-cost table"
	@echo "  bench-estimate   area/power ratios of the shipped specs; estimator vs Yosys error and speed"
	@echo "  clean            remove $(BUILD)/ and bench/results/"
	@echo "  distclean        clean, and remove the virtualenv too"

# ---------------------------------------------------------------------------------------------
# set-up: Debian packages first (apt needs root; otherwise say what to install), then the venv.
# ---------------------------------------------------------------------------------------------
setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml Makefile
	@missing="$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done | xargs)"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "setup: installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "setup: missing Debian packages: $$missing -- run: sudo apt-get install $$missing" >&2; exit 1; \
	  fi; \
	fi
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "setup: needs Python 3.11 (TensorFlow 2.14 pins it); set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# ---------------------------------------------------------------------------------------------
# the model stage
# ---------------------------------------------------------------------------------------------
$(OUT)/core.npz: $(SPEC_FILE) | $(SETUP_STAMP)
	$(SF) train-core $(SPEC_FILE) --build $(BUILD)

train: $(OUT)/core.npz

tasks: $(OUT)/core.npz
	$(SF) train-task $(SPEC_FILE) --task all --build $(BUILD)

demo: $(SETUP_STAMP)
	$(MAKE) --no-print-directory tasks SPEC=digits
	$(SF) weights list digits --build $(BUILD)
	$(MAKE) --no-print-directory csim SPEC=digits
	$(MAKE) --no-print-directory board-demo SPEC=digits

# The pixel network on whole 512x512 frames: every weight set in C simulation, then the emulated
# board (a held-out frame as a PNG photograph in, each task's output PNG out), bit-exact with QKeras.
pixels-demo: $(SETUP_STAMP)
	$(MAKE) --no-print-directory tasks SPEC=pixels
	$(MAKE) --no-print-directory csim SPEC=pixels
	$(MAKE) --no-print-directory board-demo SPEC=pixels

test: $(SETUP_STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS) tests

# The markers are registered in pyproject.toml and explained in tests/conftest.py.
QUICK_MARKERS := not train and not compile and not solve

test-quick: $(SETUP_STAMP)
	$(BIN)/python -m pytest -n 2 -m "$(QUICK_MARKERS)" $(PYTEST_ARGS) tests

# --- HLS conversion and C simulation (issue 3) ---
.PHONY: hls csim bench-hls

$(OUT)/hls/hls_manifest.json: $(OUT)/core.npz
	$(SF) convert $(SPEC_FILE) --build $(BUILD)

hls: $(OUT)/hls/hls_manifest.json

# Every weight set of the spec through the same compiled library: no recompile between them.
csim: $(OUT)/hls/hls_manifest.json
	@set -e; for w in $(OUT)/weightsets/*.npz; do \
	  $(SF) check $(SPEC_FILE) --weights $$w --build $(BUILD); \
	done

bench-hls: $(SETUP_STAMP)
	$(BIN)/python -m semifreddo.hls_project.bench_hls --spec $(SPEC_NAME) --build $(BUILD) --out bench/results

# --- board flow (issue 4) ---
# Vitis HLS / Vivado need their settings64.sh sourced first; without the tool each target stops at
# once with one line. Details and every variable: board_scripts/README.md.
BOARD        ?= pynq-z2
COSIM        ?= 0
FORCE        ?= 0
BOARD_HOST   ?=
BOARD_USER   ?=
BOARD_PORT   ?= 22
BUNDLE       ?= $(OUT)/bundle-$(BOARD)
OVERLAY_DIR  ?=
NOTEBOOK_DIR ?=
SSH_OPTS     ?=

.PHONY: boards synth bitstream package deploy

boards: | $(SETUP_STAMP)
	$(SF) boards --build $(BUILD)

synth: | $(SETUP_STAMP)
	$(SF) synth $(SPEC_FILE) --board $(BOARD) --build $(BUILD) $(if $(filter 1,$(COSIM)),--cosim) \
	  $(if $(filter 1,$(FORCE)),--force)

bitstream: | $(SETUP_STAMP)
	$(SF) bitstream $(SPEC_FILE) --board $(BOARD) --build $(BUILD) $(if $(filter 1,$(FORCE)),--force)

package: | $(SETUP_STAMP)
	$(SF) package $(SPEC_FILE) --board $(BOARD) --build $(BUILD)

deploy: | $(SETUP_STAMP)
	$(SF) deploy $(BUNDLE) --host "$(BOARD_HOST)" $(if $(BOARD_USER),--user $(BOARD_USER)) --port $(BOARD_PORT) \
	  $(if $(OVERLAY_DIR),--overlay-dir $(OVERLAY_DIR)) $(if $(NOTEBOOK_DIR),--notebook-dir $(NOTEBOOK_DIR)) \
	  --ssh-args="$(SSH_OPTS)"

# --- your own task (issue 14): train from your data, add it to a bundle and to a board ---
# make user-task SPEC=digits TASK=mine DATA=my.npz
# make add-task BUNDLE=build/digits/bundle-emulated WEIGHTS=build/digits/weightsets/mine.npz [TASK=...] [REPLACE=1]
# make deploy-weights BUNDLE=build/digits/bundle-zcu104 WEIGHTS=mine BOARD_HOST=192.168.2.99
TASK         ?=
DATA         ?=
WEIGHTS      ?=
REPLACE      ?= 0

.PHONY: user-task add-task deploy-weights

user-task: $(OUT)/core.npz
	$(SF) train-task $(SPEC_FILE) --task "$(TASK)" --data "$(DATA)" --build $(BUILD) $(if $(filter 1,$(REPLACE)),--replace)

add-task: | $(SETUP_STAMP)
	$(SF) bundle add $(BUNDLE) "$(WEIGHTS)" $(if $(TASK),--task $(TASK)) $(if $(filter 1,$(REPLACE)),--replace)

deploy-weights: | $(SETUP_STAMP)
	$(SF) deploy $(BUNDLE) --weights "$(WEIGHTS)" --host "$(BOARD_HOST)" $(if $(BOARD_USER),--user $(BOARD_USER)) --port $(BOARD_PORT) \
	  $(if $(OVERLAY_DIR),--overlay-dir $(OVERLAY_DIR)) --ssh-args="$(SSH_OPTS)"

# --- PYNQ runtime and emulated board (issue 5) ---
# The emulated board keeps its PL state in EMULATOR_STATE (deploy/README.md); `board-demo`
# power-cycles it, packages the emulated bundle, then drives it with `semifreddo reload/run`
# (task A, switch, task B) and compares every output with the QKeras model.
EMULATOR_STATE ?= $(BUILD)/emulated-board
EMULATED     := $(OUT)/bundle-emulated

.PHONY: board-demo bench-runtime bench-frames

board-demo: $(OUT)/hls/hls_manifest.json
	$(SF) package $(SPEC_FILE) --board emulated --build $(BUILD)
	rm -rf $(EMULATOR_STATE)
	SEMIFREDDO_EMULATOR_STATE=$(EMULATOR_STATE) $(BIN)/python -m semifreddo.hls_project.board_check \
	  --spec $(SPEC_FILE) --build $(BUILD) --bundle $(EMULATED)

# Whole frames (SPEC=pixels: 512x512) through the emulated board and QKeras, timed in the same run.
bench-frames: $(OUT)/hls/hls_manifest.json
	$(SF) package $(SPEC_FILE) --board emulated --build $(BUILD)
	$(BIN)/python -m semifreddo.hls_project.bench_frames --spec $(SPEC_FILE) --build $(BUILD) --bundle $(EMULATED) \
	  --out bench/results/frames-$(SPEC_NAME).json

# The alternating-tasks figure needs an IP with weight banks: SPEC's core and weight sets converted
# again with `--banks 2` in BANKS_BUILD (weight sets load into an IP of any bank count).
BANKS_BUILD  ?= $(BUILD)/bench-banks

bench-runtime: $(OUT)/hls/hls_manifest.json
	$(SF) package $(SPEC_FILE) --board emulated --build $(BUILD)
	rm -rf $(BANKS_BUILD)/$(SPEC_NAME) && mkdir -p $(BANKS_BUILD)/$(SPEC_NAME)
	cp -r $(OUT)/core.npz $(OUT)/weightsets $(BANKS_BUILD)/$(SPEC_NAME)/
	if [ -d $(OUT)/adder_graphs ]; then cp -r $(OUT)/adder_graphs $(BANKS_BUILD)/$(SPEC_NAME)/; fi
	$(SF) convert $(SPEC_FILE) --build $(BANKS_BUILD) --banks 2
	$(SF) package $(SPEC_FILE) --board emulated --build $(BANKS_BUILD)
	$(BIN)/python -m semifreddo.deploy.runtime.bench_runtime $(EMULATED) --banked $(BANKS_BUILD)/$(SPEC_NAME)/bundle-emulated \
	  --out bench/results/runtime.json

# --- cost model and design-space exploration (issue 6) ---
# The unit-cost table is characterized with Debian's Yosys and committed; `make characterize`
# redoes the calibration (about 5 minutes on 2 cores). See hls_project/estimate/README.md.
ESTIMATE_TABLE := hls_project/estimate/tables/xc7_yosys.json

.PHONY: estimate explore characterize bench-estimate

estimate: $(OUT)/core.npz
	$(SF) estimate $(SPEC_FILE) --build $(BUILD) $(if $(filter command line environment,$(origin BOARD)),--board $(BOARD))

explore: | $(SETUP_STAMP)
	$(SF) explore $(SPEC_FILE) --build $(BUILD)

characterize: | $(SETUP_STAMP)
	$(BIN)/python -m semifreddo.hls_project.estimate.characterize --out $(ESTIMATE_TABLE)

bench-estimate: | $(SETUP_STAMP)
	$(BIN)/python -m semifreddo.hls_project.estimate.bench --build $(BUILD) --out bench/results

# ---------------------------------------------------------------------------------------------
# benchmarks (not part of `make test`)
# ---------------------------------------------------------------------------------------------
bench-accuracy: $(SETUP_STAMP)
	$(BIN)/python -m semifreddo.models.bench_accuracy --out bench/results

clean:
	rm -rf $(BUILD) bench/results

distclean: clean
	rm -rf $(VENV)
