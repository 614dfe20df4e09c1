"""Training: strategy choice, optimiser, objectives (tasks) and the custom distributed loop."""
