"""Import a Dredge bundle into the local Superset with Superset's own assets importer, which
overwrites every database, dataset, chart and dashboard it holds (matched by UUID): a
re-import updates them in place. (``superset import-dashboards`` keeps existing charts and
datasets and replaces only the dashboards.)

Run in Superset's venv with SUPERSET_CONFIG_PATH set (superset.sh does):
    python import_bundle.py BUNDLE.zip USER
"""

from __future__ import annotations

import sys
import zipfile


def main(path: str, username: str) -> int:
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.commands.importers.v1.utils import get_contents_from_bundle
        from superset.utils.core import override_user

        with zipfile.ZipFile(path) as bundle:
            contents = get_contents_from_bundle(bundle)
        meta = "metadata.yaml"
        contents[meta] = contents[meta].replace('type: "Dashboard"', 'type: "assets"')
        user = security_manager.find_user(username=username)
        if user is None:
            print(f"import_bundle: no Superset user {username!r}", file=sys.stderr)
            return 1
        with override_user(user):
            ImportAssetsCommand(contents).run()
    print(f"import_bundle: imported {path} ({len(contents)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
