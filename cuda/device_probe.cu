// device_probe.cu: asks the CUDA runtime how many GPUs answer.  Any error
// (cudaErrorInsufficientDriver on a machine without a GPU, no device, ...)
// means "no GPU": the caller falls back to the CPU backend.
#include <cuda_runtime.h>

extern "C" int cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess)
        return 0;
    return n;
}
