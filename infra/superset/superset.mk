# Local Apache Superset (infra/superset/superset.sh); included by the top-level Makefile.
#   make superset-up      its own venv (pinned), metadata, admin user, web server on
#                         127.0.0.1:18088 in the background, Dredge's dashboards imported;
#                         wired to the Druid of `make druid-up`
#   make superset-down    stop it
#   make superset-status  one line: pid, port, health
SUPERSET_SH := infra/superset/superset.sh

.PHONY: superset-up superset-down superset-status

superset-up: install
	$(SUPERSET_SH) up

superset-down:
	$(SUPERSET_SH) down

superset-status:
	$(SUPERSET_SH) status
