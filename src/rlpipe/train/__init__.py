"""Training: the trainer, its budget, environments from params, and the train stage (run.py)."""
