"""Stage 2: self-supervised pretraining of a ViT tile encoder (DINO, MAE) on tile stores.

``wsi-ssl pretrain`` trains (see ``run``; a rerun resumes, see ``resume``), ``wsi-ssl export``
writes the encoder dir (``export``). A new method goes in ``methods/`` (one module, one registry
line); a new source of kNN monitor labels is a ``labels.LabelProvider``.
Inputs are read only through ``wsi_ssl.stores.tile_store``; outputs go through
``wsi_ssl.stores.encoder_dir``.
"""
