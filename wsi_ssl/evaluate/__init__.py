"""``wsi-ssl evaluate``: patch-level evaluation of frozen encoders and their stain robustness.

Datasets (``datasets``) -> pixels at the encoder's scale (``pixels``) -> cached embeddings
(``embedding``, ``cache``) -> protocols (``protocols``: linear probe, kNN, few-shot) -> robustness
(``shifts``, ``stain_norm``, ``robustness_index``) -> outputs (``outputs``, ``plots``, ``report``).
docs/evaluate.md describes the command; docs/contracts.md the files it writes.
"""
