"""Turn SSD frozen graphs into TensorRT engines on a Jetson (Python 3.6+)."""

__version__ = "0.1.0"
