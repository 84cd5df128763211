"""Gradient family: gd, torch.optim methods and L-BFGS (one implementation, box and lanes)."""
