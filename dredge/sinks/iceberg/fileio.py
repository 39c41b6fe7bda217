"""The FileIO Dredge gives pyiceberg unless the catalog names its own (``py-io-impl``).

pyiceberg's :class:`PyArrowFileIO` with one change: S3 output streams open lazily
(``allow_delayed_open``), so a small file (every metadata file, most data files of a
frequent commit) is one ``PutObject`` instead of a three-request multipart upload. Besides
being cheaper, this is what S3-compatible servers whose ``CompleteMultipartUpload`` answer
the AWS SDK refuses (moto's, as of moto 5.2) need.
"""

from __future__ import annotations

from typing import Any

from pyiceberg.io.pyarrow import PyArrowFileIO

IMPL = "dredge.sinks.iceberg.fileio.DredgeFileIO"


class DredgeFileIO(PyArrowFileIO):
    def _initialize_s3_fs(self, netloc: str | None) -> Any:
        fs = super()._initialize_s3_fs(netloc)
        rebuild, (kwargs,) = fs.__reduce__()
        return rebuild({**kwargs, "allow_delayed_open": True})
