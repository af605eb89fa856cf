# The two commands of the README. Both install what is missing first.
.PHONY: demo test install

install:
	./scripts/bootstrap.sh

demo: install
	.venv/bin/streetwatch demo

test: install
	.venv/bin/python -m pytest -q -p no:cacheprovider
