"""Population family: ask/tell methods whose generations are evaluated as one batch."""
