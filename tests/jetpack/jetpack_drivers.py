"""Scripts the tests run inside a generation's subprocess: build like the builder would
(the API of the running TensorRT version), and deserialize + infer through the fake cudart."""

BUILD = r"""
import ctypes, json, os, time
import tensorrt as trt
opts = json.loads(input())
v = tuple(int(p) for p in trt.__version__.split("."))
if opts.get("load_flattenconcat", v[0] < 7):
    ctypes.CDLL(os.path.join(os.environ["SIMJETSON_LIBS"], "libflattenconcat.so"))
logger = trt.Logger(trt.Logger.WARNING)
if opts.get("init_plugins", True):
    trt.init_libnvinfer_plugins(logger, "")
builder = trt.Builder(logger)
if v[0] == 5:
    network = builder.create_network()
else:
    explicit = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(explicit if opts.get("explicit") else 0)
parser = trt.UffParser()
parser.register_input("Input", (3, 300, 300))
parser.register_output("MarkOutput_0")
out = {"version": trt.__version__, "parsed": parser.parse(opts["uff"], network)}
if out["parsed"]:
    workspace = opts.get("workspace", 1 << 28)
    start = time.monotonic()
    if v[0] < 7:
        builder.max_workspace_size = workspace
        builder.max_batch_size = 1
        builder.fp16_mode = opts.get("fp16", False)
        engine = builder.build_cuda_engine(network)
        plan = None if engine is None else bytes(engine.serialize())
    else:
        config = builder.create_builder_config()
        if v >= (8, 4):
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
        else:
            config.max_workspace_size = workspace
        if opts.get("fp16"):
            config.set_flag(trt.BuilderFlag.FP16)
        if "dla_core" in opts:
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = opts["dla_core"]
        if opts.get("gpu_fallback"):
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        if v[0] >= 8:
            data = builder.build_serialized_network(network, config)
            plan = None if data is None else bytes(data)
        else:
            engine = builder.build_engine(network, config)
            plan = None if engine is None else bytes(engine.serialize())
    out["build_seconds"] = time.monotonic() - start
    out["built"] = plan is not None
    if plan is not None:
        with open("engine.bin", "wb") as handle:
            handle.write(plan)
        out["plan"] = os.path.abspath("engine.bin")
        out["size"] = len(plan)
print(json.dumps(out))
"""

INFER = r"""
import ctypes, json, os, struct
import tensorrt as trt
opts = json.loads(input())
logger = trt.Logger(trt.Logger.WARNING)
trt.init_libnvinfer_plugins(logger, "")
with open(opts["plan"], "rb") as handle:
    engine = trt.Runtime(logger).deserialize_cuda_engine(handle.read())
out = {"engine": engine is not None}
if engine is not None:
    cu = ctypes.CDLL(os.path.join(os.environ["SIMJETSON_LIBS"], "libcudart.so"))
    names = [engine.get_binding_name(i) for i in range(engine.num_bindings)]
    shapes = [tuple(engine.get_binding_shape(i)) for i in range(engine.num_bindings)]
    out["bindings"] = [[n, list(s), engine.binding_is_input(i)]
                       for i, (n, s) in enumerate(zip(names, shapes))]
    pointers, sizes = [], []
    for shape in shapes:
        size = 4
        for dim in shape:
            size *= dim
        pointer = ctypes.c_void_p()
        assert cu.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(size)) == 0
        pointers.append(pointer.value)
        sizes.append(size)
    stream = ctypes.c_void_p()
    cu.cudaStreamCreate(ctypes.byref(stream))
    context = engine.create_execution_context()
    out["runs"] = []
    for fill in opts["fills"]:
        image = struct.pack("<f", fill) * (sizes[0] // 4)
        cu.cudaMemcpy(ctypes.c_void_p(pointers[0]), image, ctypes.c_size_t(sizes[0]), 1)
        ok = context.execute_async(1, pointers, stream.value)
        cu.cudaStreamSynchronize(stream)
        detections = ctypes.create_string_buffer(sizes[1])
        count = ctypes.create_string_buffer(4)
        cu.cudaMemcpy(detections, ctypes.c_void_p(pointers[1]), ctypes.c_size_t(sizes[1]), 2)
        cu.cudaMemcpy(count, ctypes.c_void_p(pointers[2]), ctypes.c_size_t(4), 2)
        keep = struct.unpack("<i", count.raw)[0]
        rows = [list(struct.unpack_from("<7f", detections.raw, 28 * i)) for i in range(keep)]
        out["runs"].append({"ok": ok, "count": keep, "rows": rows})
    out["bad_pointer"] = context.execute_async(1, [1, 2, 3], stream.value)
print(json.dumps(out))
"""
