# CUDA backend: compiled only when configure found nvcc, cuBLAS and NCCL.
EXTRA_DIST += cuda/device_probe.cu
if HAVE_CUDA
libshardtune_a_SOURCES += cuda/device_probe.cu
endif
