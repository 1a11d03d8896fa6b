"""Training: the Trainer (recurrent cycling), samples, EOFs, normalisation; checkpoint files."""
