"""``from wsi_ssl.client import Client``: the import path analysts' notebooks already use.

The client lives with the server it talks to, in ``wsi_ssl.serve.client``; this module only
re-exports it, so both paths name the same classes.
"""

from wsi_ssl.serve.client import NPY_MEDIA, ApiError, Client

__all__ = ["NPY_MEDIA", "ApiError", "Client"]
