"""Stage 2: self-supervised pretraining of a ViT tile encoder (DINO, MAE) on tile stores.

``wsi-ssl pretrain`` trains (see ``run``), ``wsi-ssl export`` writes the encoder dir (``export``).
Inputs are read only through ``wsi_ssl.stores.tile_store``; outputs go through
``wsi_ssl.stores.encoder_dir``.
"""
