# Deployment tooling (included from the top-level Makefile).
#   make promtool      build promtool from the Go module proxy (once per machine: the binary
#                      is kept in ~/.cache/dredge and linked into infra/alerts/bin)
#   make deploy-lint   cfn-lint on infra/aws, promtool check/test rules, systemd-analyze verify
PROMTOOL_VERSION ?= v0.316.0
# -tags remove_all_sd leaves out the service-discovery plugins (the cloud SDKs), which rule
# checks and tests do not use: the build takes about a seventh of the time.
PROMTOOL := infra/alerts/bin/promtool
PROMTOOL_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/dredge/promtool-$(PROMTOOL_VERSION)

.PHONY: promtool deploy-lint

$(PROMTOOL_CACHE)/promtool:
	GOBIN=$(PROMTOOL_CACHE) go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

$(PROMTOOL): $(PROMTOOL_CACHE)/promtool
	mkdir -p $(dir $@)
	ln -sf $< $@

promtool: $(PROMTOOL)

deploy-lint: install $(PROMTOOL)
	$(BIN)/cfn-lint infra/aws/*.yaml
	$(PROMTOOL) check rules infra/alerts/dredge.rules.yml
	$(PROMTOOL) test rules infra/alerts/tests.yml
	sed 's#/opt/dredge/bin/dredge#$(CURDIR)/$(BIN)/dredge#' infra/systemd/dredge.service > $(VENV)/dredge.service
	systemd-analyze verify $(VENV)/dredge.service
