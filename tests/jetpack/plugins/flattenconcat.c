/*
 * SIMULATED libflattenconcat.so: stands in for the FlattenConcat_TRT plugin library that
 * TensorRT 5 and 6 users compiled from the uff_ssd sample and loaded with
 * ctypes.CDLL("/usr/lib/libflattenconcat.so") before parsing an SSD UFF.
 * The simulated TensorRT recognises that the library was loaded by finding its file name
 * in /proc/self/maps; nothing here is called.
 */
const char simjetson_flattenconcat_identity[] = "SIMULATED FlattenConcat_TRT plugin library";

int simjetsonFlattenConcatVersion(void)
{
    return 1;
}
