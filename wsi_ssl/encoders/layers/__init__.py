"""Modules some presets need that neither timm nor transformers ships (CONCH v1.5's pooler, CTransPath's stem)."""
