/*
 * SIMULATED CUDA runtime (libcudart) for the Jetson test doubles.
 *
 * Implements, with the real C signatures and cudaError_t values, the part of the CUDA
 * runtime a Python verifier reaches through ctypes. "Device" memory is host memory, so the
 * simulated TensorRT can read inputs and write outputs at the "device pointer" addresses
 * (Jetsons share DRAM between CPU and GPU, so this is not far from the real picture).
 *
 * Total allocation is limited to memory_mib from the device description
 * ($SIMJETSON_DEVICE or /etc/simjetson/device.json); beyond it cudaMalloc returns
 * cudaErrorMemoryAllocation (2), like a device that is out of memory.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SIMJETSON_CUDART_VERSION
#define SIMJETSON_CUDART_VERSION 10020
#endif

/* cudaError_t values as in driver_types.h (CUDA 10.x/11.x/12.x agree on these). */
enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInvalidResourceHandle = 400
};

enum { cudaMemcpyHostToHost = 0, cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2,
       cudaMemcpyDeviceToDevice = 3, cudaMemcpyDefault = 4 };

typedef int cudaError_t;
typedef struct sim_stream *cudaStream_t;

struct sim_allocation {
    char *base;
    size_t size;
    struct sim_allocation *next;
};

struct sim_stream {
    unsigned magic;
};
#define SIM_STREAM_MAGIC 0x5157u

static pthread_mutex_t sim_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sim_allocation *sim_allocations;
static size_t sim_allocated_bytes;
static long long sim_limit_bytes = -1; /* -1: not read yet */
static cudaError_t sim_last_error = cudaSuccess;

static cudaError_t sim_record(cudaError_t err)
{
    if (err != cudaSuccess)
        sim_last_error = err;
    return err;
}

/* memory_mib from the device description; 0 (no limit) when the file cannot be read. */
static long long sim_read_limit(void)
{
    const char *path = getenv("SIMJETSON_DEVICE");
    if (path == NULL || *path == '\0')
        path = "/etc/simjetson/device.json";
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return 0;
    char text[8192];
    size_t length = fread(text, 1, sizeof(text) - 1, file);
    fclose(file);
    text[length] = '\0';
    const char *key = strstr(text, "\"memory_mib\"");
    if (key == NULL)
        return 0;
    const char *colon = strchr(key, ':');
    if (colon == NULL)
        return 0;
    return strtoll(colon + 1, NULL, 10) * 1024LL * 1024LL;
}

/* Caller holds sim_lock. Returns the allocation containing [ptr, ptr+count) or NULL. */
static struct sim_allocation *sim_find(const void *ptr, size_t count)
{
    const char *address = (const char *)ptr;
    for (struct sim_allocation *entry = sim_allocations; entry != NULL; entry = entry->next) {
        if (address >= entry->base && address + count <= entry->base + entry->size)
            return entry;
    }
    return NULL;
}

cudaError_t cudaMalloc(void **devPtr, size_t size)
{
    if (devPtr == NULL)
        return sim_record(cudaErrorInvalidValue);
    pthread_mutex_lock(&sim_lock);
    if (sim_limit_bytes < 0)
        sim_limit_bytes = sim_read_limit();
    if (sim_limit_bytes > 0 && (long long)(sim_allocated_bytes + size) > sim_limit_bytes) {
        pthread_mutex_unlock(&sim_lock);
        *devPtr = NULL;
        return sim_record(cudaErrorMemoryAllocation);
    }
    struct sim_allocation *entry = malloc(sizeof(*entry));
    char *base = calloc(1, size ? size : 1);
    if (entry == NULL || base == NULL) {
        free(entry);
        free(base);
        pthread_mutex_unlock(&sim_lock);
        return sim_record(cudaErrorMemoryAllocation);
    }
    entry->base = base;
    entry->size = size;
    entry->next = sim_allocations;
    sim_allocations = entry;
    sim_allocated_bytes += size;
    pthread_mutex_unlock(&sim_lock);
    *devPtr = base;
    return cudaSuccess;
}

cudaError_t cudaFree(void *devPtr)
{
    if (devPtr == NULL)
        return cudaSuccess;
    pthread_mutex_lock(&sim_lock);
    struct sim_allocation **link = &sim_allocations;
    while (*link != NULL && (*link)->base != (char *)devPtr)
        link = &(*link)->next;
    if (*link == NULL) {
        pthread_mutex_unlock(&sim_lock);
        return sim_record(cudaErrorInvalidDevicePointer);
    }
    struct sim_allocation *entry = *link;
    *link = entry->next;
    sim_allocated_bytes -= entry->size;
    pthread_mutex_unlock(&sim_lock);
    free(entry->base);
    free(entry);
    return cudaSuccess;
}

static cudaError_t sim_copy(void *dst, const void *src, size_t count, int kind)
{
    if (count == 0)
        return cudaSuccess;
    if (dst == NULL || src == NULL)
        return sim_record(cudaErrorInvalidValue);
    int dst_on_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    int src_on_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
        return sim_record(cudaErrorInvalidMemcpyDirection);
    pthread_mutex_lock(&sim_lock);
    int bad = (dst_on_device && sim_find(dst, count) == NULL) ||
              (src_on_device && sim_find(src, count) == NULL);
    pthread_mutex_unlock(&sim_lock);
    if (bad)
        return sim_record(cudaErrorInvalidValue);
    memmove(dst, src, count);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, int kind)
{
    return sim_copy(dst, src, count, kind);
}

static int sim_stream_valid(cudaStream_t stream)
{
    /* 0 is the legacy default stream. */
    return stream == NULL || stream->magic == SIM_STREAM_MAGIC;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, int kind,
                            cudaStream_t stream)
{
    if (!sim_stream_valid(stream))
        return sim_record(cudaErrorInvalidResourceHandle);
    return sim_copy(dst, src, count, kind); /* completes at once: host memory */
}

cudaError_t cudaStreamCreate(cudaStream_t *pStream)
{
    if (pStream == NULL)
        return sim_record(cudaErrorInvalidValue);
    struct sim_stream *stream = malloc(sizeof(*stream));
    if (stream == NULL)
        return sim_record(cudaErrorMemoryAllocation);
    stream->magic = SIM_STREAM_MAGIC;
    *pStream = stream;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    return sim_stream_valid(stream) ? cudaSuccess : sim_record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    if (stream == NULL || stream->magic != SIM_STREAM_MAGIC)
        return sim_record(cudaErrorInvalidResourceHandle);
    stream->magic = 0;
    free(stream);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t err = sim_last_error;
    sim_last_error = cudaSuccess;
    return err;
}

const char *cudaGetErrorString(cudaError_t error)
{
    switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    default: return "unrecognized error code";
    }
}

cudaError_t cudaRuntimeGetVersion(int *runtimeVersion)
{
    if (runtimeVersion == NULL)
        return sim_record(cudaErrorInvalidValue);
    *runtimeVersion = SIMJETSON_CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int *count)
{
    if (count == NULL)
        return sim_record(cudaErrorInvalidValue);
    *count = 1;
    return cudaSuccess;
}

/* Not CUDA API: lets the simulated TensorRT check binding addresses like a GPU would
 * fault on them. Returns 1 when [ptr, ptr+size) lies inside one cudaMalloc allocation. */
int simjetsonIsDeviceRange(const void *ptr, size_t size)
{
    pthread_mutex_lock(&sim_lock);
    int found = sim_find(ptr, size) != NULL;
    pthread_mutex_unlock(&sim_lock);
    return found;
}

/* Marker string: `strings libcudart.so | grep SIMULATED` tells what this file is. */
const char simjetson_identity[] = "SIMULATED libcudart for Jetson test doubles";
