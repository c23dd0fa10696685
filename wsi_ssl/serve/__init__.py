"""``wsi-ssl serve``: the embeddings API over feature caches, for downstream studies."""
