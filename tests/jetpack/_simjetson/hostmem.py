"""IHostMemory: serialized engines and caches; supports the buffer protocol like the real one."""


class IHostMemory(bytes):
    @property
    def nbytes(self):
        return len(self)

    @property
    def dtype(self):
        return "uint8"  # the real property is trt.DataType-like; plans are byte blobs
