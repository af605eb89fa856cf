# The two commands of the README. Both install what is missing first.
.PHONY: demo test install

install:
	./scripts/bootstrap.sh

demo: install
	.venv/bin/streetwatch demo

# Two workers, each given whole files (module fixtures are made once), the slowest files first
# (tests/conftest.py): most slow tests wait on servers and cameras, so two overlap well.
test: install
	.venv/bin/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder
