"""The evaluation core: objectives, batched and differentiated rows, and the Oracle that counts.

Nothing here imports the methods, the parallel executors or the experiment layer: they all
depend on the core, never the reverse.
"""
