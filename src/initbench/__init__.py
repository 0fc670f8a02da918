"""initbench: a reproducible, experiment-tracked study of neural-network weight initialization.

The pipeline (DVC stages ``download -> normalize -> train@<init> -> evaluate@<init> -> compare``)
trains one Keras model per initializer listed in ``params.yaml`` and tracks every run in MLflow.
"""

__version__ = "0.1.0"
