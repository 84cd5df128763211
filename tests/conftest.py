"""Test-wide settings: one torch thread, so tiny problems do not pay for thread contention on
a shared machine and results do not depend on the thread count."""

import torch

torch.set_num_threads(1)
