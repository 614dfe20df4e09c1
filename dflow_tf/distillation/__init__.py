"""Distillation: teacher ensembles as annotators, student transformations, the student objective."""
