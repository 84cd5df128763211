"""scipy.optimize behind the same budget, counting and bounds as every other method."""
