# The two commands of the README. Everything they need is installed by scripts/bootstrap.sh.
.PHONY: run test unit target-python sanity lint molecule bench

run:
	scripts/bootstrap.sh
	.venv/bin/ansible-playbook playbooks/deploy.yml

test:
	scripts/test.sh

unit:
	scripts/test.sh unit

sanity:
	scripts/test.sh sanity

lint:
	scripts/test.sh lint

molecule:
	scripts/test.sh molecule

target-python:
	scripts/test.sh target-python

bench:
	scripts/bootstrap.sh --hosts
	for b in bench/*/run.sh; do "$$b" || exit 1; done
