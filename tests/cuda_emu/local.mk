# The CPU emulation of CUDA (see tests/cuda_emu/cuda_emu.cc): the CUDA
# backend's own sources, compiled with the C++ compiler against the headers
# in tests/cuda_emu/include, into a plugin that runs without a GPU and
# without nvcc.  Built on every machine, for tests/gpu/emulated.sh.
CUDA_EMU_SRC = $(srcdir)/cuda/backend_cuda.cu $(srcdir)/cuda/elementwise_cuda.cu $(srcdir)/cuda/attention_cuda.cu \
	$(srcdir)/cuda/xent_cuda.cu $(srcdir)/cuda/flash_attention_cuda.cu $(srcdir)/cuda/dequant4_cuda.cu \
	$(srcdir)/tests/cuda_emu/cuda_emu.cc
CUDA_EMU_INC = $(srcdir)/tests/cuda_emu/include/cuda_runtime.h $(srcdir)/tests/cuda_emu/include/cuda_fp16.h \
	$(srcdir)/tests/cuda_emu/include/cublas_v2.h $(srcdir)/tests/cuda_emu/include/nccl.h \
	$(srcdir)/tests/cuda_emu/include/cuda_bf16.h $(srcdir)/tests/cuda_emu/include/mma.h \
	$(srcdir)/cuda/cuda_internal.h $(srcdir)/cuda/backend_cuda.h $(srcdir)/cuda/comm_nccl.h \
	$(srcdir)/src/backend.h $(srcdir)/src/dtype.h
EXTRA_DIST += tests/cuda_emu/cuda_emu.cc tests/cuda_emu/include/cuda_runtime.h tests/cuda_emu/include/cuda_fp16.h \
	tests/cuda_emu/include/cublas_v2.h tests/cuda_emu/include/nccl.h tests/cuda_emu/include/cuda_bf16.h \
	tests/cuda_emu/include/mma.h
check_DATA = tests/cuda_emu/shardtune-cuda-emu.so
CLEANFILES += tests/cuda_emu/shardtune-cuda-emu.so

tests/cuda_emu/shardtune-cuda-emu.so: $(CUDA_EMU_SRC) $(CUDA_EMU_INC) $(srcdir)/cuda/comm_nccl.c
	$(MKDIR_P) tests/cuda_emu
	$(CC) -shared -fPIC -O1 -g -DSHARDTUNE_CUDA_EMULATION -DOMPI_SKIP_MPICXX=1 \
		-I$(srcdir)/tests/cuda_emu/include -I$(srcdir)/cuda $(AM_CPPFLAGS) \
		-x c++ $(CUDA_EMU_SRC) -x c $(srcdir)/cuda/comm_nccl.c -lstdc++ -o $@
