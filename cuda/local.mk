# CUDA backend and NCCL communicator, built when configure found nvcc,
# cuBLAS and NCCL: an archive (linked into the GPU tests) and the plugin
# shardtune-cuda.so made of it (opened by the program, src/cuda_plugin.c).
EXTRA_DIST += cuda/backend_cuda.cu cuda/elementwise_cuda.cu cuda/attention_cuda.cu cuda/xent_cuda.cu cuda/flash_attention_cuda.cu \
	cuda/dequant4_cuda.cu cuda/comm_nccl.c cuda/cuda_internal.h cuda/backend_cuda.h cuda/comm_nccl.h
libshardtune_a_SOURCES += src/cuda_plugin.c
noinst_HEADERS += src/cuda_plugin.h
if HAVE_CUDA
noinst_LIBRARIES += libshardtune_cuda.a
libshardtune_cuda_a_SOURCES = cuda/backend_cuda.cu cuda/elementwise_cuda.cu cuda/attention_cuda.cu \
	cuda/xent_cuda.cu cuda/flash_attention_cuda.cu cuda/dequant4_cuda.cu cuda/comm_nccl.c
libshardtune_cuda_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/cuda $(CUDA_CPPFLAGS)
libshardtune_cuda_a_CFLAGS = $(AM_CFLAGS) -fPIC
LIBS_CUDA = libshardtune_cuda.a $(CUDA_LDFLAGS) $(CUDA_LIBS)
# the .cu suffix rule tracks no headers: these are the ones whose layout the
# objects share with the program (the backend struct above all)
$(libshardtune_cuda_a_OBJECTS): $(srcdir)/src/backend.h $(srcdir)/src/dtype.h $(srcdir)/cuda/cuda_internal.h \
	$(srcdir)/cuda/backend_cuda.h

shardtune-cuda.so: libshardtune_cuda.a
	$(CC) -shared -o $@ -Wl,--whole-archive libshardtune_cuda.a -Wl,--no-whole-archive $(CUDA_LDFLAGS) $(CUDA_LIBS)
all-local: shardtune-cuda.so
install-exec-local: shardtune-cuda.so
	$(MKDIR_P) '$(DESTDIR)$(pkglibdir)'
	$(INSTALL_PROGRAM) shardtune-cuda.so '$(DESTDIR)$(pkglibdir)/shardtune-cuda.so'
uninstall-local:
	rm -f '$(DESTDIR)$(pkglibdir)/shardtune-cuda.so'
CLEANFILES += shardtune-cuda.so
endif
