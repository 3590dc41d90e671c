# Quick start:  make run   (set up if needed, then run the simulated pack with every component)
#               make test  (set up if needed, then lint and the whole test suite)
.PHONY: setup run test lint clean

setup:
	@bash scripts/setup.sh

run: setup
	@bash scripts/run.sh $(ARGS)

lint: setup
	@bash -c 'source env.sh && ruff check .'

test: setup
	@bash scripts/test.sh $(ARGS)

clean:
	rm -rf build install log
