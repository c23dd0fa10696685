"""Object storage: slides, tile stores, feature files and run outputs at ``s3://``, ``gs://`` or
``https://`` URLs, read and written in place through fsspec (docs/storage.md).

- ``paths.py``: the one path/URL abstraction. ``as_path`` turns a CLI or config value into a
  ``pathlib.Path`` (local) or a ``upath.UPath`` (remote) with the same API, so the stages keep
  their ``folder / name`` code; plus the few operations pathlib lacks (size, upload, h5 open).
- ``rundir.py``: run directories (``mil train --out``) published to a URL file by file.
- Slides at URLs are read by ``wsi_ssl/slide/readers/remote.py`` (tiffslide over an fsspec file
  with ranged reads, never a download), the readers' own hook for URLs.

Credentials and endpoints come only from each cloud's standard environment and config files
(``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ``GOOGLE_APPLICATION_CREDENTIALS`` ...); there are no
options of our own.
"""

from wsi_ssl.storage.paths import AnyPath, PathOrURL, as_path, is_url

__all__ = ["AnyPath", "PathOrURL", "as_path", "is_url"]
