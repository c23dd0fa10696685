"""The evaluation protocols on frozen embeddings: linear probe, kNN, few-shot; and their metrics."""
