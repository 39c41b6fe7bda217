# Local Apache Druid + kinesis-local (infra/druid/druid.sh); included by the top-level Makefile.
#   make druid-deps     jars from Maven Central into infra/druid/lib (cached), kinesis-local via npm
#   make druid-up       start ZooKeeper, kinesis-local, moto (S3, from the venv) and Druid;
#                       returns once all are healthy
#   make druid-down     stop them
#   make druid-status   one line per process
#   make druid-smoke    Kinesis supervisor + SQL-based ingestion against the running cluster
# Ports and sizes: see the header of infra/druid/druid.sh.
DRUID_SH := infra/druid/druid.sh

.PHONY: druid-deps druid-up druid-down druid-status druid-smoke

druid-deps:
	$(DRUID_SH) deps

druid-up: druid-deps install
	$(DRUID_SH) up

druid-down:
	$(DRUID_SH) down

druid-status:
	$(DRUID_SH) status

druid-smoke: install
	$(BIN)/python infra/druid/smoke.py all
