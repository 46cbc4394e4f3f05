# Two commands do all set-up on a fresh machine:
#   (run skips `rag prepare`: app.py itself materialises the model and builds a missing or stale index)
#   make run   - the chatbot (creates .venv, the model and the index when missing)
#   make test  - the tests (the same set-up first)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
RAY_STAMP := $(VENV)/.installed-ray-$(shell cksum < requirements-ray.txt | cut -d' ' -f1)

.PHONY: run test setup index lint bench eval clean-venv

run: $(STAMP)
	$(BIN)/python app.py

test: setup $(RAY_STAMP)
	$(BIN)/python -m pytest -q

setup: $(STAMP)
	$(BIN)/python -m rag prepare

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	rm -f $(VENV)/.installed-[0-9]*
	touch $@

# the optional Ray group (requirements-ray.txt): the tests cover that path, `make run` does not need it
$(RAY_STAMP): $(STAMP) requirements-ray.txt
	$(BIN)/python -m pip install -q -r requirements-ray.txt
	rm -f $(VENV)/.installed-ray-*
	touch $@

index: $(STAMP)
	$(BIN)/python -m rag build

eval: setup
	$(BIN)/python -m eval --compare

bench: setup
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check rag eval tests bench app.py

clean-venv:
	rm -rf $(VENV)
