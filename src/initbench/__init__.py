"""initbench: a reproducible, experiment-tracked study of neural-network weight initialization.

The DVC pipeline ``download -> normalize -> train (the pipeline's cell), train_lr_sweep,
train_dataset@<dataset>, train_strategy@<variant>, train_conv@<cell>, train_depth@<cell>,
train_phase@<cell> -> report`` trains every initializer of ``params.yaml`` x its seeds as stacks
in one compiled program per stack (MLPs and CNNs), tests each model, tracks each in its own MLflow
run, and writes the report. Layers: ``data``, ``init`` (the initializer registry),
``train``, ``report``.
"""

__version__ = "0.1.0"
