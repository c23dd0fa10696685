"""The file contracts between stages, in code (docs/contracts.md, contracts 1-3).

Stages never import each other; they read and write these files through this package only.
"""
