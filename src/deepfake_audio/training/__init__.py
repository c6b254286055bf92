"""Training: the loop, its typed config, the LightningModule, the run folder and resume."""
