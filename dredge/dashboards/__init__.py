"""Druid dashboards as code: an Apache Superset asset bundle (``dredge dashboards export``).

The bundle is a ZIP that Superset's own importer reads (``superset import-dashboards -p``, or
*Import dashboards* in its UI): one database (Druid SQL through pydruid's ``druid://``
dialect, built from ``[sink.druid]``), datasets over the Druid datasource with their metrics,
virtual datasets where a chart needs rows shaped differently, the charts, and three
dashboards with native filters and cross-filtering. Every UUID is derived from a name, so a
re-import updates the same objects in place.

Modules, from the data up: :mod:`.yamltext` (the YAML writer), :mod:`.schema` (the columns
and metrics of the ``flows`` rows in Druid, the cost model), :mod:`.datasets`,
:mod:`.charts`, :mod:`.layout` (dashboards, native filters), :mod:`.bundle` (the ZIP) and
:mod:`.command` (the CLI). Nothing here is imported by ``dredge --help``.
"""
