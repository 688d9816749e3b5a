"""Generation of the OOD-style distillation set D_OOD (proposal, Sec. 2.3)."""
