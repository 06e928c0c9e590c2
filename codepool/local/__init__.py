"""Local engines and the local API server behind `unique-codes serve`."""
