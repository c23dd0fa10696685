"""Results a pathologist opens in QuPath: per-slide GeoJSON (``geojson.py``) of tissue, ink and the
tile grid with measurements (tissue fraction; MIL attention and per-tile predictions from
``mil_scores.py``), and a small pyramidal OME-TIFF of per-tile scores (``overlay.py``).
``wsi-ssl export-geojson`` (``command.py``) ties them together. Coordinates are level-0 pixels of
the source slide, QuPath's own image coordinates."""
