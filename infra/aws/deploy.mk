# Deployment tooling (included from the top-level Makefile).
#   make promtool      build promtool from the Go module proxy into infra/alerts/bin (once)
#   make deploy-lint   cfn-lint on infra/aws, promtool check/test rules, systemd-analyze verify
PROMTOOL_VERSION ?= v0.316.0
# -tags remove_all_sd leaves out the service-discovery plugins (the cloud SDKs), which rule
# checks and tests do not use: the build takes about a seventh of the time.
PROMTOOL := infra/alerts/bin/promtool

.PHONY: promtool deploy-lint

$(PROMTOOL):
	GOBIN=$(CURDIR)/infra/alerts/bin go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

promtool: $(PROMTOOL)

deploy-lint: install $(PROMTOOL)
	$(BIN)/cfn-lint infra/aws/*.yaml
	$(PROMTOOL) check rules infra/alerts/dredge.rules.yml
	$(PROMTOOL) test rules infra/alerts/tests.yml
	sed 's#/opt/dredge/bin/dredge#$(CURDIR)/$(BIN)/dredge#' infra/systemd/dredge.service > $(VENV)/dredge.service
	systemd-analyze verify $(VENV)/dredge.service
