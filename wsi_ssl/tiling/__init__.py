"""Stage 1, ``wsi-ssl tile``: tissue detection, an MPP-true tile grid, parallel block reads, tile stores."""
