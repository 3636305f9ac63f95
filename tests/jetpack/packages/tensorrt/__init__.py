"""SIMULATED TensorRT Python bindings for the Jetson test fleet (never shipped).

The API surface is the one of the TensorRT version in the device description
(/etc/simjetson/device.json or $SIMJETSON_DEVICE); see tests/jetpack/README.md.
"""

from _simjetson import trt_api as _trt_api

globals().update(_trt_api.build_namespace())
del _trt_api
